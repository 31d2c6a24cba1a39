"""A simulated upstream on loopback: lifecycle, listening or refusing, the fault in force."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

import orjson
from aiohttp import web

from gateway.sim import anthropic_wire, openai_wire
from gateway.sim.behaviour import (SIM, ReceivedRequest, SimConfig, SimState, ended_streams, json_response,
                                   odd_input_is_400)
from gateway.sim.faults import Fault, fault_from_json
from gateway.sim.gpu_metrics import DIALECTS, exposition

# A cut or refused connection is the point of a fault, not an error of the simulator's.
logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)


class SimServer:
    def __init__(self, config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.state = SimState(config)
        wire = anthropic_wire if config.wire == "anthropic" else openai_wire
        # Real APIs take bodies of tens of megabytes (long contexts, images): so does the sim.
        self.app = web.Application(middlewares=[ended_streams, odd_input_is_400(wire.error)],
                                   client_max_size=64 * 1024 * 1024)
        self.app[SIM] = self.state
        {"openai": openai_wire.add_routes, "azure": openai_wire.add_azure_routes,
         "anthropic": anthropic_wire.add_routes}[config.wire](self.app)
        self.app.router.add_post("/_sim/fault", self._control_fault)
        self.app.router.add_get("/_sim/stats", self._control_stats)
        if config.gpu is not None and config.gpu.server in DIALECTS:
            self.app.router.add_get("/metrics", self._metrics)   # Ollama and OpenAI serve none: 404
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        self._site: web.TCPSite | None = None
        self._revert: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        server = self._site._server
        assert server is not None
        self.port = cast(asyncio.Server, server).sockets[0].getsockname()[1]

    async def _refuse(self) -> None:
        """Close the listener and abort every open connection, pooled keep-alive ones included."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        server = self._runner.server
        if server is not None:
            for conn in list(server.connections):
                if conn.transport is not None:
                    conn.transport.abort()

    async def stop(self) -> None:
        if self._revert is not None:
            self._revert.cancel()
        for event in list(self.state.on_stop):
            event.set()
        await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        root = f"http://{self.host}:{self.port}"
        return root + "/v1" if self.config.wire == "openai" else root

    @property
    def fault(self) -> Fault:
        return self.state.fault

    @property
    def requests(self) -> list[ReceivedRequest]:
        return self.state.requests

    def request_count(self, path_suffix: str | None = None) -> int:
        return sum(1 for r in self.state.requests if path_suffix is None or r.path.endswith(path_suffix))

    def reset_log(self) -> None:
        self.state.requests.clear()

    async def set_fault(self, fault: Fault | None) -> None:
        """The fault for the next requests (None: healthy). Must run on the server's own loop."""
        fault = fault or Fault()
        was_refusing = self.state.fault.refuse
        self.state.fault = fault
        self.state.failed = 0
        if self._revert is not None:
            self._revert.cancel()
            self._revert = None
        if fault.refuse and not was_refusing:
            await self._refuse()
        elif not fault.refuse and was_refusing:
            await self._listen()
        if not fault.hang and not fault.stall_after_chunks:
            for event in list(self.state.on_stop):
                event.set()  # hung requests end with the fault that hung them
        if fault.duration_s is not None:
            loop = asyncio.get_running_loop()
            self._revert = loop.call_later(fault.duration_s, lambda: loop.create_task(self.set_fault(None)))

    async def _control_fault(self, request: web.Request) -> web.Response:
        try:
            data: Any = orjson.loads(await request.read() or b"{}")
            fault = fault_from_json(data if isinstance(data, dict) else {})
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        await self.set_fault(fault)
        return json_response({"fault": fault.__dict__})

    async def _control_stats(self, request: web.Request) -> web.Response:
        gpu = self.state.gpu
        return json_response({"name": self.config.name, "wire": self.config.wire, "fault": self.state.fault.__dict__,
                              "requests": len(self.state.requests),
                              "gpu": gpu.load().__dict__ if gpu is not None else None})

    async def _metrics(self, request: web.Request) -> web.Response:
        gpu = self.state.gpu
        assert gpu is not None and self.config.gpu is not None
        text = exposition(self.config.gpu.server, gpu.load(), self.config.models[0] if self.config.models
                          else f"{self.config.name}-model")
        assert text is not None
        # The content type prometheus_client serves, as the real servers do.
        return web.Response(body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def serve_forever(config: SimConfig, port: int) -> None:
    server = SimServer(config, port=port)
    await server.start()
    print(f"simulated {config.wire} provider '{config.name}' on {server.base_url}", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()
    await server.stop()
