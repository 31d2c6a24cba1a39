"""The console in a real browser: headless Chromium (Debian's) opens /admin/ui#key=… on a gateway serving the
default policy's routes, sees every route with its targets, sees a target go from healthy to ejected within
5 s of its outage and back once it recovers, and finds no secret on the page; without an admin key the page
shows nothing but its form.

RECLOSER_CONSOLE_SCREENSHOT=docs/console.png keeps the screenshot this test takes (the README shows it)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim.faults import HEALTHY, Fault
from tests.browser import Chromium, Page
from tests.conftest import UPSTREAM_KEY, GatewayFactory, digest

ROOT = Path(__file__).resolve().parents[2]
ADMIN, USER = "sk-console-admin-5b0f9e", "sk-console-user-77c2a1"
TRAFFIC_LIMIT_S = 60.0   # the background traffic stops by itself after this, whatever happens


def console_policy(ledger: Path) -> str:
    """The default policy, with keys, a budget, a known upstream key on `frontier` (so the test can look
    for it on the page), and a breaker that ejects at the second failure in a row (the test times the
    console, not how much traffic an ejection takes) for a second (short enough to watch the recovery)."""
    text = (ROOT / "gateway" / "policies" / "default.yaml").read_text()
    text = text.replace("path: var/spend/ledger.jsonl", f"path: {ledger}")
    frontier = "kind: sim\n    sim: {wire: openai, first_token_delay_s: 0.02"
    assert frontier in text, "the default policy's frontier provider changed shape"
    text = text.replace(frontier, f"kind: sim\n    api_key: {UPSTREAM_KEY}\n    sim: {{wire: openai, "
                                  "first_token_delay_s: 0.02", 1)
    return text + f"""
breaker: {{consecutive_failures: 2, base_ejection_s: 1, probe_interval_s: 0.5, slow_start_s: 0}}
budgets:
  - {{name: search-daily, team: search, period: day, limit_usd: 0.05, action: warn}}
auth:
  keys:
    - {{id: ops, sha256: {digest(ADMIN)}, team: platform, app: console, admin: true}}
    - {{id: web, sha256: {digest(USER)}, team: search, app: web}}
"""


class Traffic:
    """Clients of every route on a thread, until stopped (or TRAFFIC_LIMIT_S passed)."""

    def __init__(self, gw: EmbeddedGateway) -> None:
        self.gw = gw
        self.stop = threading.Event()
        self.answered = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        ends = time.monotonic() + TRAFFIC_LIMIT_S
        headers = {"Authorization": f"Bearer {USER}"}
        with httpx.Client(base_url=self.gw.base_url, headers=headers, timeout=10) as client:
            n = 0
            while not self.stop.is_set() and time.monotonic() < ends:
                n += 1
                if n % 5 == 0:
                    r = client.post("/embeddings", json={"model": "embed", "input": "hello"})
                else:
                    model = "local" if n % 7 == 0 else "chat"
                    r = client.post("/chat/completions", json={"model": model, "stream": n % 2 == 0,
                                                               "messages": [{"role": "user", "content": f"hi {n}"}]})
                self.answered += r.status_code == 200


TARGET_STATE = "document.querySelector('[data-route=\"chat\"] [data-target=\"{target}\"]')?.dataset.state"


def state_of(target: str) -> str:
    return TARGET_STATE.format(target=target)


async def page_text(page: Page) -> str:
    return str(await page.evaluate("document.documentElement.outerHTML"))


@pytest.fixture
def gw(start_gateway: GatewayFactory, tmp_path: Path) -> EmbeddedGateway:
    return start_gateway(console_policy(tmp_path / "ledger.jsonl"))


def test_the_console_shows_every_route_an_outage_within_5_s_and_the_recovery_and_no_secret(
        gw: EmbeddedGateway, tmp_path: Path) -> None:
    routing = gw.context.routing
    secrets = {ADMIN, USER, UPSTREAM_KEY} | {d.api_key for d in routing.deployments() if d.api_key}
    screenshot = Path(os.environ.get("RECLOSER_CONSOLE_SCREENSHOT") or tmp_path / "console.png")

    async def scenario() -> dict[str, float]:
        async with Chromium.launch() as browser:
            page = await browser.open(f"{gw.url}/admin/ui#key={ADMIN}")
            await page.until("document.body.dataset.updated !== undefined")
            assert await page.evaluate("location.href") == f"{gw.url}/admin/ui", "the key stays in the address bar"
            assert await page.evaluate("document.getElementById('login').checkVisibility()") is False
            shown = await page.evaluate(
                "[...document.querySelectorAll('[data-route]')].map(r => [r.dataset.route, "
                "[...r.querySelectorAll('[data-target]')].map(t => [t.dataset.target, t.dataset.state])])")
            expected = {name: [d.key for d in route.deployments] for name, route in routing.routes.items()}
            assert {name: [t for t, _ in targets] for name, targets in shown} == expected
            assert all(state == "healthy" for _, targets in shown for _, state in targets)

            with Traffic(gw) as traffic:
                frontier = "frontier/gpt-4o-mini"
                await page.until(f"document.querySelector('[data-route=\"chat\"] [data-target=\"{frontier}\"]')"
                                 ".cells[8].textContent !== '0'")
                await asyncio.to_thread(gw.set_fault, "frontier", Fault(refuse=True))
                outage = time.monotonic()
                await page.until(f"{state_of(frontier)} === 'ejected'", timeout_s=10)
                ejected_after = time.monotonic() - outage
                await page.until("document.querySelectorAll('[data-failover]').length > 0")
                await page.screenshot(screenshot)
                text = await page_text(page)
                await asyncio.to_thread(gw.set_fault, "frontier", HEALTHY)
                healed = time.monotonic()
                await page.until(f"{state_of(frontier)} === 'healthy'", timeout_s=15)
                back_after = time.monotonic() - healed
                assert traffic.answered > 0
            for secret in secrets:
                assert secret not in text
                assert secret not in await page_text(page)
            assert page.errors == []
            return {"ejected_after": ejected_after, "back_after": back_after}

    seen = asyncio.run(scenario())
    print(f"console: frontier shown ejected {seen['ejected_after']:.2f} s after its outage began, "
          f"healthy {seen['back_after']:.2f} s after it ended")
    assert seen["ejected_after"] < 5.0
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_an_admin_key_the_page_shows_only_its_form_and_the_state_is_refused(gw: EmbeddedGateway) -> None:
    async def scenario() -> None:
        async with Chromium.launch() as browser:
            page = await browser.open(f"{gw.url}/admin/ui")
            assert await page.evaluate("document.getElementById('login').checkVisibility()") is True
            assert await page.evaluate("document.getElementById('console').checkVisibility()") is False
            assert await page.evaluate("fetch('/admin/state').then(r => r.status)") == 401
            # A key that is not an admin's, typed into the form: refused, and still nothing but the form.
            await page.evaluate(f"document.getElementById('key').value = '{USER}'; "
                                "document.getElementById('login').requestSubmit(); true")
            await page.until("document.getElementById('refused').checkVisibility()")
            assert await page.evaluate("document.getElementById('console').checkVisibility()") is False
            assert await page.evaluate("document.querySelectorAll('[data-route]').length") == 0
            assert USER not in await page_text(page)
            # Every script the page runs is its own file: none inline.
            assert await page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
            assert page.errors == []

    asyncio.run(scenario())
