"""The outgoing credentials of a `credentials: client` deployment: the caller's own, as it sent them,
with the beta flags bound to them. Every other deployment is called with the gateway's key alone."""

from __future__ import annotations

from gateway.core.deployment import Deployment
from gateway.providers.base import AttemptError, Call, unfit


def credential_wire(call: Call) -> str:
    """The API a caller's credential belongs to: the one it called the gateway on (a Messages
    client holds an Anthropic credential; the OpenAI endpoints' clients hold OpenAI ones)."""
    return "anthropic" if call.endpoint == "messages" else "openai"


def deployment_wire(d: Deployment) -> str:
    return "anthropic" if d.kind == "anthropic" else "openai"


def why_not(d: Deployment, call: Call) -> str | None:
    """Why `d` cannot be called with this call's credential (None: it can), before any round trip."""
    if call.credential is None:
        return "needs the caller's own credentials, and the request carries none"
    if credential_wire(call) != deployment_wire(d):
        return f"takes {deployment_wire(d)} credentials, and the caller's are for {credential_wire(call)}"
    return None


def with_credential(headers: dict[str, str], d: Deployment, call: Call) -> dict[str, str]:
    """`headers` with the caller's credential where `d` is a client-credential deployment; raises
    the unfit AttemptError when the call has none it can use (the next target is tried, no fault)."""
    if not d.client_credentials:
        return headers
    why = why_not(d, call)
    if why is not None:
        raise _unfit(why)
    credential = call.credential
    assert credential is not None
    out = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-api-key", "api-key")}
    if deployment_wire(d) == "anthropic" and credential.scheme == "x-api-key":
        out["x-api-key"] = credential.secret
    else:
        out["Authorization"] = f"Bearer {credential.secret}"
    if credential.betas and deployment_wire(d) == "anthropic":
        own = out.get("anthropic-beta")
        bound = ",".join(credential.betas)
        out["anthropic-beta"] = f"{own},{bound}" if own else bound
    return out


def _unfit(why: str) -> AttemptError:
    return unfit(f"this target {why}")
