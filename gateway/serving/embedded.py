"""A gateway running on a background thread's event loop, on loopback: for the demo, the drill and tests.

The caller's thread stays free for blocking clients such as the official `openai` SDK.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

from gateway.serving.app import build_app
from gateway.serving.listener import DrainingSite, listening_socket
from gateway.flow.context import CONTEXT, GatewayContext
from gateway.policy.load import LoadedPolicy

T = TypeVar("T")


class EmbeddedGateway:
    def __init__(self, policy: LoadedPolicy, host: str = "127.0.0.1", port: int = 0,
                 background_canaries: bool = True) -> None:
        self.policy = policy
        self.background_canaries = background_canaries
        self.host = host
        self.port = port
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="recloser-embedded", daemon=True)
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None

    def start(self) -> EmbeddedGateway:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self.app = build_app(self.policy, watch_loop_lag=False, background_canaries=self.background_canaries)
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        sock = listening_socket(self.host, self.port, backlog=1024)
        self.port = sock.getsockname()[1]  # the bound socket tells the port when 0 was asked for
        await DrainingSite(self._runner, sock, self.policy.document.limits.request_read_timeout_s).start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the gateway's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def context(self) -> GatewayContext:
        assert self.app is not None
        return self.app[CONTEXT]

    def sim(self, provider: str) -> Any:
        """The simulated upstream the policy started for `provider`."""
        return self.context.sims[provider]

    def set_fault(self, provider: str, fault: Any) -> None:
        self.run(self.sim(provider).set_fault(fault))

    def stop(self) -> None:
        if self.loop.is_closed():   # stopped already
            return
        if self._runner is not None:
            self.run(self._runner.cleanup())
            self._runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def __enter__(self) -> EmbeddedGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
