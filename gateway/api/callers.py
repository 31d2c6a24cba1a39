"""Who is calling, and with which credentials of its own: the gateway key names the caller (team,
app, key id); a client credential, where the caller brought one, is handed to `credentials: client`
providers only. Neither is logged, stored or echoed: only the key's id and the credential's
fingerprint go further."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.core.auth import Authenticator, Caller
from gateway.core.credentials import CREDENTIAL_BETA_PREFIX, ClientCredential, split_betas
from gateway.core.errors import invalid_api_key

# Where a caller that sends its own provider credentials in Authorization / x-api-key names its
# gateway key (Claude Code: ANTHROPIC_CUSTOM_HEADERS; Codex: http_headers in its provider table).
GATEWAY_KEY_HEADER = "x-recloser-key"


def gateway_authorization(headers: Mapping[str, str]) -> str | None:
    """The gateway key as an Authorization value: `x-recloser-key` when sent, else `Authorization`
    (OpenAI's SDKs), else `x-api-key` (Anthropic's)."""
    named = headers.get(GATEWAY_KEY_HEADER)
    if named is not None:
        return "Bearer " + named.strip()
    authorization = headers.get("Authorization")
    if authorization is None and "x-api-key" in headers:
        return "Bearer " + headers["x-api-key"]
    return authorization


def client_credential(headers: Mapping[str, str]) -> ClientCredential | None:
    """The caller's own provider credential: a bearer token, else an x-api-key; with the beta flags
    bound to it (`oauth-*`)."""
    beta = headers.get("anthropic-beta")
    bound = split_betas(beta)[1] if beta and CREDENTIAL_BETA_PREFIX in beta else ()
    authorization = headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return ClientCredential("bearer", authorization[7:].strip(), bound)
    key = headers.get("x-api-key", "").strip()
    if key:
        return ClientCredential("x-api-key", key, bound)
    return None


def identify(auth: Authenticator, headers: Mapping[str, str]) -> tuple[Caller, ClientCredential | None]:
    """The caller, and its own credential where it brought one; an unknown or missing gateway key is
    a 401 whatever else the request carries.

    With `x-recloser-key`, Authorization / x-api-key are the caller's own credentials. Without it they
    are the gateway key, unless the policy has no `auth:` (loopback only): then any key is accepted
    and what the caller sent is its own credential."""
    caller = auth.authenticate(gateway_authorization(headers))
    if caller is None:
        raise invalid_api_key()
    if GATEWAY_KEY_HEADER in headers or auth.open:
        credential = client_credential(headers)
        if credential is not None and credential.secret == headers.get(GATEWAY_KEY_HEADER, "").strip():
            return caller, None   # the gateway key sent twice is not a provider credential: it stays here
        return caller, credential
    return caller, None
