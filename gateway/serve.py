"""Serving one process: the event loop (uvloop where it installs), signals, and a clean shutdown."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from gateway.app import build_app
from gateway.policy.load import LoadedPolicy

log = logging.getLogger("switchyard")


def event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:  # uvloop does not build everywhere; asyncio's own loop serves too
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def serve(loaded: LoadedPolicy, host: str, port: int, reuse_port: bool = False) -> int:
    event_loop_policy()
    app = build_app(loaded)
    if not reuse_port:
        print(f"switchyard: serving {loaded.source} on http://{host}:{port}/v1", flush=True)
    # A deep accept backlog: under overload a connection should wait to be shed with a 503, not
    # be dropped into the kernel's SYN retries (seconds).
    web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=10,
                reuse_port=reuse_port or None, backlog=4096)
    return 0
