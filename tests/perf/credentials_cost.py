"""What callers' own credentials add to one request, timed in-process.

    python tests/perf/credentials_cost.py

Times, per request: finding the caller by its gateway key alone (the common case) against finding
it by `x-recloser-key` beside its own OAuth bearer and beta flags; the headers passed upstream with
and without an `oauth-*` flag to split off; the outgoing headers of a `credentials: client` target;
and the cool-down lookup that precedes it. Prints microseconds; asserts nothing.
"""

from __future__ import annotations

import hashlib
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from gateway.api.callers import identify  # noqa: E402
from gateway.api.handlers import passed_headers  # noqa: E402
from gateway.core.auth import Authenticator  # noqa: E402
from gateway.core.deployment import Deployment  # noqa: E402
from gateway.policy.schema import ApiKey, Auth, Timeouts  # noqa: E402
from gateway.providers.base import Call  # noqa: E402
from gateway.providers.credentials import with_credential  # noqa: E402
from gateway.routing.credentials import CredentialCooldowns  # noqa: E402

KEY = "sk-recloser-gateway-key-0123456789"
BETAS = "claude-code-20250219,context-management-2025-06-27,advanced-tool-use-2025-11-20"
RUNS = 100_000


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def main() -> None:
    # Ten keys in the policy: every one is compared, so the time does not say which was close.
    auth = Authenticator(Auth(keys=[ApiKey(id=f"k{i}", sha256=digest(f"{KEY}{i}"), team="t", app="a")
                                    for i in range(9)] + [ApiKey(id="dev", sha256=digest(KEY), team="t", app="a")]))
    plain = CIMultiDict({"Authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01", "anthropic-beta": BETAS})
    own = CIMultiDict({"Authorization": "Bearer sk-ant-oat01-0123456789abcdef", "x-recloser-key": KEY,
                       "anthropic-version": "2023-06-01", "anthropic-beta": f"oauth-2025-04-20,{BETAS}"})
    _, credential = identify(auth, own)
    call = Call("messages", {"model": "r"}, False, "rid", credential=credential)
    target = Deployment("sub", "m", "anthropic", "http://x", Timeouts(), client_credentials=True)
    cooldowns = CredentialCooldowns()
    plain_request = make_mocked_request("POST", "/v1/messages", headers=plain)
    own_request = make_mocked_request("POST", "/v1/messages", headers=own)
    assert credential is not None
    cases: list[tuple[str, Callable[[], object]]] = [
        ("caller by its gateway key alone", lambda: identify(auth, plain)),
        ("caller by x-recloser-key, with its own bearer", lambda: identify(auth, own)),
        ("headers passed upstream, no oauth flag", lambda: passed_headers(plain_request)),
        ("headers passed upstream, oauth flag split off", lambda: passed_headers(own_request)),
        ("a client target's outgoing headers", lambda: with_credential({"anthropic-version": "2023-06-01"},
                                                                        target, call)),
        ("the cool-down lookup", lambda: cooldowns.back_in("sub", credential.fingerprint, 1.0)),
    ]
    for name, run in cases:
        seconds = min(timeit.repeat(run, number=RUNS, repeat=5)) / RUNS
        print(f"{name:48s} {seconds * 1e6:7.2f} µs")


if __name__ == "__main__":
    main()
