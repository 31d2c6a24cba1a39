"""Client credentials, pure parts: who is calling and with what (api/callers.py), the beta flags bound
to a credential, the headers a client-credential deployment is called with, the failure kind a
refusal becomes, the cool-down state, and the policy's checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway.api.callers import identify
from gateway.api.handlers import passed_headers
from gateway.core.auth import Authenticator
from gateway.core.credentials import ClientCredential, split_betas
from gateway.core.deployment import Deployment
from gateway.core.errors import ApiError
from gateway.policy.load import PolicyError, load_policy
from gateway.policy.schema import ApiKey, Auth, Timeouts
from gateway.providers.base import AttemptError, Call, Failure, usage_limit_reset_s
from gateway.providers.credentials import with_credential
from gateway.routing.classify import Verdict, classify
from gateway.routing.credentials import CredentialCooldowns, cooldown_s, refuses_credential
from tests.conftest import write_policy

GATEWAY_KEY = "sk-gw-0123456789"
OAUTH = "sk-ant-oat01-secret-abcdef"
AUTH = Authenticator(Auth(keys=[ApiKey(id="dev", sha256=hashlib.sha256(GATEWAY_KEY.encode()).hexdigest(),
                                       team="dev", app="agents")]))


def headers(**given: str) -> CIMultiDict[str]:
    return CIMultiDict({k.replace("_", "-"): v for k, v in given.items()})


def deployment(kind: str = "anthropic", client: bool = True, **extra: object) -> Deployment:
    return Deployment("sub", "m", kind, "http://x", Timeouts(), client_credentials=client, **extra)  # type: ignore[arg-type]


def call(credential: ClientCredential | None, endpoint: str = "messages") -> Call:
    return Call(endpoint, {"model": "r"}, False, "rid", credential=credential)  # type: ignore[arg-type]


def test_with_x_recloser_key_the_bearer_is_the_callers_own_credential_with_its_oauth_flags() -> None:
    caller, credential = identify(AUTH, headers(x_recloser_key=GATEWAY_KEY, Authorization=f"Bearer {OAUTH}",
                                                anthropic_beta="oauth-2025-04-20,claude-code-20250219"))
    assert caller.key_id == "dev"
    assert credential == ClientCredential("bearer", OAUTH, ("oauth-2025-04-20",))


def test_an_x_api_key_beside_x_recloser_key_is_the_callers_own_credential() -> None:
    _, credential = identify(AUTH, headers(x_recloser_key=GATEWAY_KEY, x_api_key="sk-ant-api03-mine"))
    assert credential is not None and credential.scheme == "x-api-key" and credential.secret == "sk-ant-api03-mine"


def test_the_gateway_key_sent_in_both_places_is_never_taken_for_a_provider_credential() -> None:
    caller, credential = identify(AUTH, headers(x_recloser_key=GATEWAY_KEY, Authorization=f"Bearer {GATEWAY_KEY}"))
    assert caller.key_id == "dev" and credential is None


def test_without_x_recloser_key_authorization_is_the_gateway_key_and_no_credential_goes_upstream() -> None:
    caller, credential = identify(AUTH, headers(Authorization=f"Bearer {GATEWAY_KEY}"))
    assert caller.key_id == "dev" and credential is None


@pytest.mark.parametrize("given", [
    {"Authorization": f"Bearer {OAUTH}"},                                        # no gateway key at all
    {"x_recloser_key": "sk-wrong", "Authorization": f"Bearer {OAUTH}"},          # an unknown one
    {"x_recloser_key": "sk-wrong", "Authorization": f"Bearer {GATEWAY_KEY}"},    # the right one in the wrong place
])
def test_an_unknown_or_missing_gateway_key_is_refused_whatever_else_is_sent(given: dict[str, str]) -> None:
    with pytest.raises(ApiError) as refused:
        identify(AUTH, headers(**given))
    assert refused.value.status == 401


def test_with_no_auth_section_what_the_caller_sends_is_its_own_credential() -> None:
    caller, credential = identify(Authenticator(None), headers(Authorization="Bearer sk-proj-mine"))
    assert caller.key_id == "anonymous" and credential is not None and credential.secret == "sk-proj-mine"


def test_a_credential_shows_only_its_fingerprint() -> None:
    credential = ClientCredential("bearer", OAUTH)
    assert OAUTH not in repr(credential) and OAUTH not in str(credential)
    assert credential.fingerprint == ClientCredential("x-api-key", OAUTH).fingerprint != OAUTH


def test_the_oauth_beta_flag_is_not_among_the_headers_passed_to_every_provider() -> None:
    request = make_mocked_request("POST", "/v1/messages", headers=headers(
        anthropic_beta="oauth-2025-04-20, claude-code-20250219", x_recloser_key=GATEWAY_KEY))
    assert passed_headers(request) == {"anthropic-beta": "claude-code-20250219"}
    only_oauth = make_mocked_request("POST", "/v1/messages", headers=headers(anthropic_beta="oauth-2025-04-20"))
    assert "anthropic-beta" not in passed_headers(only_oauth)
    assert split_betas("a,oauth-x, b") == (("a", "b"), ("oauth-x",))


def test_an_anthropic_client_target_gets_the_bearer_and_its_flags_and_nothing_of_the_gateways() -> None:
    credential = ClientCredential("bearer", OAUTH, ("oauth-2025-04-20",))
    out = with_credential({"anthropic-beta": "own-beta", "x-api-key": "sk-gateway"}, deployment(), call(credential))
    assert out == {"anthropic-beta": "own-beta,oauth-2025-04-20", "Authorization": f"Bearer {OAUTH}"}


def test_an_anthropic_api_key_goes_as_x_api_key_and_an_openai_key_as_a_bearer() -> None:
    key = ClientCredential("x-api-key", "sk-ant-api03-mine")
    assert with_credential({}, deployment(), call(key)) == {"x-api-key": "sk-ant-api03-mine"}
    personal = ClientCredential("bearer", "sk-proj-mine")
    assert with_credential({}, deployment("openai"), call(personal, "responses")) == \
        {"Authorization": "Bearer sk-proj-mine"}


def test_a_gateway_key_deployment_is_called_as_configured_whatever_the_caller_brought() -> None:
    own = {"x-api-key": "sk-gateway"}
    assert with_credential(own, deployment(client=False), call(ClientCredential("bearer", OAUTH))) is own


@pytest.mark.parametrize("credential, endpoint", [(None, "messages"),
                                                  (ClientCredential("bearer", "sk-proj-mine"), "chat")])
def test_a_client_target_without_a_credential_for_its_api_is_unfit_not_failed(
        credential: ClientCredential | None, endpoint: str) -> None:
    with pytest.raises(AttemptError) as unfit:
        with_credential({}, deployment(), call(credential, endpoint))
    assert unfit.value.failure is Failure.UNFIT


@pytest.mark.parametrize("status", [401, 403, 429])
def test_a_refused_client_credential_fails_over_without_counting_against_the_deployment(status: int) -> None:
    err = AttemptError(Failure.STATUS, status=status)
    assert refuses_credential(deployment(), err) and not refuses_credential(deployment(client=False), err)
    err.failure = Failure.CREDENTIAL
    c = classify(err)
    assert c.verdict is Verdict.FAIL_OVER and not c.penalise
    assert c.reason == ("credential_limited" if status == 429 else "credential_refused")


def test_a_client_target_answering_503_is_an_outage_like_any_other() -> None:
    assert not refuses_credential(deployment(), AttemptError(Failure.STATUS, status=503))


def test_a_usage_limit_cools_until_its_reset_else_retry_after_else_the_providers_cool_down() -> None:
    d = deployment(credential_cooldown_s=45.0)
    assert cooldown_s(d, AttemptError(Failure.STATUS, status=429, retry_after_s=30, limit_reset_s=3600)) == 3600
    assert cooldown_s(d, AttemptError(Failure.STATUS, status=429, retry_after_s=30)) == 30
    assert cooldown_s(d, AttemptError(Failure.STATUS, status=429)) == 45
    assert cooldown_s(d, AttemptError(Failure.STATUS, status=401, retry_after_s=30)) == 45


def test_anthropics_unified_reset_is_read_only_when_the_limit_is_rejected() -> None:
    rejected = {"anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": "1000300"}
    assert usage_limit_reset_s(rejected, 1_000_000.0) == 300
    assert usage_limit_reset_s({**rejected, "anthropic-ratelimit-unified-status": "allowed"}, 1_000_000.0) is None
    assert usage_limit_reset_s({"anthropic-ratelimit-unified-status": "rejected"}, 1_000_000.0) is None


def test_a_cooled_credential_is_kept_off_its_provider_only_and_comes_back_when_it_ends() -> None:
    cooldowns = CredentialCooldowns()
    cooldowns.cool("sub", "alice", until=130.0, now=100.0)
    assert cooldowns.back_in("sub", "alice", 110.0) == 20.0
    assert cooldowns.back_in("sub", "bob", 110.0) is None
    assert cooldowns.back_in("other", "alice", 110.0) is None
    assert cooldowns.back_in("sub", "alice", 130.0) is None
    assert cooldowns.until == {}


def test_the_cool_down_book_stays_bounded() -> None:
    cooldowns = CredentialCooldowns(max_entries=2)
    cooldowns.cool("sub", "a", until=50.0, now=0.0)
    cooldowns.cool("sub", "b", until=90.0, now=0.0)
    cooldowns.cool("sub", "c", until=70.0, now=0.0)
    assert set(cooldowns.until) == {("sub", "b"), ("sub", "c")}


@pytest.mark.parametrize("provider, why", [
    ("{kind: anthropic, credentials: client, api_key: sk-x}", "remove api_key"),
    ("{kind: bedrock, credentials: client}", "needs kind openai or anthropic"),
    ("{kind: anthropic, via: litellm, credentials: client}", "called natively"),
    ("{kind: sim, credentials: client, sim: {wire: azure}}", "needs kind openai or anthropic"),
    ("{kind: openai, credentials: client, endpoints: ['http://a:1/v1']}", "not a pool"),
])
def test_a_policy_with_a_client_credential_provider_it_cannot_call_is_refused(
        tmp_path: Path, provider: str, why: str) -> None:
    path = write_policy(tmp_path, f"""
        version: 1
        providers:
          sub: {provider}
        routes:
          r: {{targets: [{{provider: sub, model: m}}]}}
        """)
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert why in str(refused.value) and "policy.yaml:3: providers.sub" in str(refused.value)


def test_with_shared_state_a_cool_down_made_here_is_news_once_and_one_heard_is_not_retold() -> None:
    cooldowns = CredentialCooldowns(sharing=True)
    cooldowns.cool("sub", "alice", until=130.0, now=100.0)
    cooldowns.cool("sub", "bob", until=140.0, now=100.0, told=True)
    assert cooldowns.take_fresh() == {("sub", "alice"): 130.0}
    assert cooldowns.take_fresh() == {}
    cooldowns.untold({("sub", "alice"): 130.0})            # the exchange failed: told at the next one
    assert cooldowns.take_fresh() == {("sub", "alice"): 130.0}
    assert cooldowns.back_in("sub", "bob", 110.0) == 30.0


def test_with_shared_state_the_credentials_asked_about_are_those_served_lately() -> None:
    cooldowns = CredentialCooldowns(sharing=True)
    cooldowns.back_in("sub", "alice", 0.0)
    cooldowns.back_in("sub", "carol", 100.0)               # not seen for 15 minutes by then: forgotten
    cooldowns.back_in("sub", "bob", 500.0)
    cooldowns.back_in("sub", "alice", 600.0)               # seen again: kept
    assert cooldowns.asked(1200.0) == [("sub", "bob"), ("sub", "alice")]
