"""Headless Chromium for the console's tests, driven over the DevTools protocol with aiohttp's websocket
client: open a page, read its DOM as it changes (Runtime.evaluate), take a screenshot. No selenium, no
browser of a driver's own: Debian's `chromium`, found or installed by tests/services.py.

    async with Chromium.launch() as browser:
        page = await browser.open("http://127.0.0.1:8080/admin/ui#key=…")
        await page.until("document.querySelectorAll('[data-route]').length > 0")
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests import services

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--no-default-browser-check", "--disable-quic", "--disable-extensions", "--mute-audio",
         "--window-size=1400,900", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")
START_TIMEOUT_S = 30.0


class DevToolsError(RuntimeError):
    pass


class Page:
    """One tab, attached in flat mode: commands carry its session id over the browser's socket."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session
        self.errors: list[str] = []     # exceptions the page's own scripts threw (Runtime.exceptionThrown)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, session=self.session, **params)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str, timeout_s: float = 5.0) -> float:
        """Waits until `expression` is truthy in the page, looking again on every change of the DOM (a
        MutationObserver, inside the page); returns how long that took."""
        started = time.monotonic()
        waited = await self.evaluate(f"""new Promise((resolve) => {{
            const holds = () => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }};
            if (holds()) {{ resolve(true); return; }}
            const watch = new MutationObserver(() => {{
                if (holds()) {{ watch.disconnect(); clearTimeout(timer); resolve(true); }}
            }});
            const timer = setTimeout(() => {{ watch.disconnect(); resolve(holds()); }}, {int(timeout_s * 1000)});
            watch.observe(document, {{subtree: true, childList: true, attributes: true, characterData: true}});
        }})""")
        if not waited:
            raise TimeoutError(f"not true within {timeout_s} s: {expression}")
        return time.monotonic() - started

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


class Chromium:
    def __init__(self, process: subprocess.Popen[bytes], profile: Path, ws: aiohttp.ClientWebSocketResponse,
                 session: aiohttp.ClientSession) -> None:
        self.process = process
        self.profile = profile
        self.ws = ws
        self.http = session
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.awaited: dict[tuple[str, str | None], asyncio.Future[dict[str, Any]]] = {}   # (event, session)
        self.pages: dict[str, Page] = {}
        self.reader = asyncio.create_task(self._read())

    @classmethod
    @asynccontextmanager
    async def launch(cls) -> AsyncIterator[Chromium]:
        binary = services.find("chromium")
        profile = Path(tempfile.mkdtemp(prefix="recloser-chromium-"))
        process = subprocess.Popen([str(binary), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        session = aiohttp.ClientSession()
        browser: Chromium | None = None
        try:
            port, path = await _active_port(profile, process)
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
            browser = cls(process, profile, ws, session)
            yield browser
        finally:
            if browser is not None:
                await browser.close()
            await session.close()
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            shutil.rmtree(profile, ignore_errors=True)

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = message.json()
            if data.get("method") == "Runtime.exceptionThrown":
                page = self.pages.get(data.get("sessionId", ""))
                if page is not None:
                    details = data["params"]["exceptionDetails"]
                    page.errors.append(str(details.get("exception", {}).get("description") or details.get("text")))
            if "method" in data:   # an event
                awaited = self.awaited.pop((data["method"], data.get("sessionId")), None)
                if awaited is not None and not awaited.done():
                    awaited.set_result(data.get("params", {}))
                continue
            waiter = self.waiting.pop(data.get("id", -1), None)
            if waiter is not None and not waiter.done():
                if "error" in data:
                    waiter.set_exception(DevToolsError(str(data["error"])))
                else:
                    waiter.set_result(data.get("result", {}))
        for waiter in [*self.waiting.values(), *self.awaited.values()]:
            if not waiter.done():
                waiter.set_exception(DevToolsError("the browser closed its DevTools connection"))

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[ident] = waiter
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_json(message)
        async with asyncio.timeout(START_TIMEOUT_S):
            return await waiter

    async def open(self, url: str) -> Page:
        """A new tab showing `url`, loaded (its load event fired)."""
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = self.pages[attached["sessionId"]] = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        loaded = self.awaited[("Page.loadEventFired", page.session)] = asyncio.get_running_loop().create_future()
        await page.send("Page.navigate", url=url)
        async with asyncio.timeout(START_TIMEOUT_S):
            await loaded
        return page

    async def close(self) -> None:
        try:
            await self.send("Browser.close")
        except (DevToolsError, ConnectionError, TimeoutError):
            pass
        await self.ws.close()
        self.reader.cancel()


async def _active_port(profile: Path, process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Chromium writes the port it chose and its browser socket's path to DevToolsActivePort."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before it listened")
        if marker.exists():
            lines = marker.read_text().split()
            if len(lines) >= 2:
                return int(lines[0]), lines[1]
        await asyncio.sleep(0.05)   # a file another process writes: nothing to await but its appearance
    raise TimeoutError(f"chromium wrote no {marker.name} within {START_TIMEOUT_S} s")
