"""The console's endpoints over real sockets: the page and its files need no key and carry a strict CSP; the
state wants an admin key (401 without one, 403 with another key), is never cached, and tells of the
failovers and spend of the requests the gateway served."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from gateway.policy.load import PolicyError, load_policy
from gateway.serving.embedded import EmbeddedGateway
from gateway.sim.faults import Fault
from tests.conftest import UPSTREAM_KEY, GatewayFactory, digest, write_policy

ADMIN, USER = "sk-admin-c0ffee", "sk-user-beef01"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


POLICY = f"""
version: 1
providers:
  alpha:
    kind: sim
    api_key: {UPSTREAM_KEY}
    sim: {{wire: openai}}
    models: {{alpha-model: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}}
  beta:
    kind: sim
    sim: {{wire: openai}}
    models: {{beta-model: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}}
routes:
  chat:
    targets:
      - {{provider: alpha, model: alpha-model}}
      - {{provider: beta, model: beta-model}}
auth:
  keys:
    - {{id: ops, sha256: {digest(ADMIN)}, team: platform, app: console, admin: true}}
    - {{id: web, sha256: {digest(USER)}, team: search, app: web}}
"""


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_strict(r: httpx.Response) -> None:
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Cache-Control"] == "no-store"


def test_the_state_without_an_admin_key_is_refused(gw: EmbeddedGateway) -> None:
    assert httpx.get(f"{gw.url}/admin/state").status_code == 401
    assert httpx.get(f"{gw.url}/admin/state", headers=bearer("sk-wrong")).status_code == 401
    assert httpx.get(f"{gw.url}/admin/state", headers=bearer(USER)).status_code == 403


def test_the_state_with_an_admin_key_is_json_never_cached_under_a_strict_policy(gw: EmbeddedGateway) -> None:
    r = httpx.get(f"{gw.url}/admin/state", headers=bearer(ADMIN))
    assert r.status_code == 200
    assert_strict(r)
    assert [route["name"] for route in r.json()["routes"]] == ["chat"]
    assert r.json()["pid"] == os.getpid()   # the embedded gateway's process: with workers, the one that answered


def test_the_page_and_its_files_need_no_key_and_run_no_inline_script(gw: EmbeddedGateway) -> None:
    page = httpx.get(f"{gw.url}/admin/ui")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert_strict(page)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, flags=re.S)
    assert scripts and all('src="/admin/ui/' in attrs and not body.strip() for attrs, body in scripts)
    assert "style=" not in page.text and "<style" not in page.text
    for path, kind in (("/admin/ui/console.js", "text/javascript"), ("/admin/ui/console.css", "text/css")):
        r = httpx.get(f"{gw.url}{path}")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind)
        assert_strict(r)


def test_other_paths_under_the_page_still_want_an_admin_key(gw: EmbeddedGateway) -> None:
    assert httpx.get(f"{gw.url}/admin/ui/other").status_code == 401


def test_the_state_tells_of_a_failover_and_the_teams_spend(gw: EmbeddedGateway) -> None:
    gw.set_fault("alpha", Fault(status=500))
    hello = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(f"{gw.base_url}/chat/completions", json=hello, headers=bearer(USER)).status_code == 200
    state = httpx.get(f"{gw.url}/admin/state", headers=bearer(ADMIN)).json()
    failover = state["failovers"][0]
    assert (failover["route"], failover["from"], failover["to"], failover["reason"]) == \
        ("chat", "alpha/alpha-model", "beta/beta-model", "server_error")
    (team,) = state["spend"]["teams"]
    assert team["team"] == "search" and team["spent_usd"] > 0
    alpha = state["routes"][0]["targets"][0]
    assert (alpha["attempts_1m"], alpha["failed_1m"]) == (2, 2)   # the first try and its retry
    assert UPSTREAM_KEY not in str(state) and ADMIN not in str(state)


def test_a_policy_can_take_the_page_away_and_keep_the_state(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY + "operations: {console: false}\n")
    assert httpx.get(f"{gw.url}/admin/ui").status_code == 404
    assert httpx.get(f"{gw.url}/admin/ui/console.js").status_code == 404
    assert httpx.get(f"{gw.url}/admin/state", headers=bearer(ADMIN)).status_code == 200


def test_a_console_setting_that_is_no_boolean_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write_policy(tmp_path, POLICY + "operations: {console: sometimes}\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert re.search(r"policy\.yaml:\d+: operations\.console", str(info.value)), str(info.value)


def test_the_state_counts_the_requests_held_on_each_route(start_gateway: GatewayFactory) -> None:
    # Its one target is out at its first failure and no scout goes to try it while the test looks.
    held = ("  held:\n    hold_s: 30\n    breaker: {consecutive_failures: 1, base_ejection_s: 60, probe_interval_s: 60}\n"
            "    targets: [{provider: gamma, model: m}]\n")
    gw = start_gateway(POLICY.replace("routes:\n", "  gamma: {kind: sim}\nroutes:\n" + held, 1))
    gw.set_fault("gamma", Fault(refuse=True))
    body = {"model": "held", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{gw.base_url}/chat/completions", json=body, headers=bearer(USER), timeout=30) as r:
        lines = r.iter_lines()   # kept: an iterator let go closes the stream, and the client would have left
        assert next(lines).startswith(":")   # the held stream's first keepalive: it is in the line now
        state = httpx.get(f"{gw.url}/admin/state", headers=bearer(ADMIN)).json()
    routes = {route["name"]: route for route in state["routes"]}
    assert (routes["held"]["held"], routes["held"]["hold_s"]) == (1, 30.0)
    assert (routes["chat"]["held"], routes["chat"]["hold_s"]) == (0, 0.0)
    assert state["waiting"]["held"] == 1 and state["waiting"]["max_held"] == 10_000


def test_failovers_traffic_and_spend_outlive_a_reload(gw: EmbeddedGateway) -> None:
    gw.set_fault("alpha", Fault(status=500))
    hello = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(f"{gw.base_url}/chat/completions", json=hello, headers=bearer(USER)).status_code == 200
    before = httpx.get(f"{gw.url}/admin/state", headers=bearer(ADMIN)).json()
    path = Path(gw.policy.source)
    path.write_text(path.read_text().replace("routes:\n  chat:\n", "routes:\n  chat:\n    description: reloaded\n"))
    reloaded = httpx.post(f"{gw.url}/admin/reload", headers=bearer(ADMIN)).json()
    assert reloaded["status"] == "reloaded"
    after = httpx.get(f"{gw.url}/admin/state", headers=bearer(ADMIN)).json()
    assert after["routes"][0]["description"] == "reloaded"
    assert after["failovers"] == before["failovers"] and after["spend"]["teams"] == before["spend"]["teams"]
    assert after["routes"][0]["targets"][0]["attempts_1m"] == before["routes"][0]["targets"][0]["attempts_1m"] == 2
