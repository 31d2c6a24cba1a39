"""Serving one process: the event loop (uvloop where it installs), signals, and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

from aiohttp import web

from gateway.app import build_app
from gateway.context import CONTEXT
from gateway.listener import DrainingSite, listening_socket
from gateway.policy.load import LoadedPolicy
from gateway.workers import WORKERS_ENV

# A deep accept backlog: under overload a connection should wait to be shed with a 503, not be
# dropped into the kernel's SYN retries (seconds).
BACKLOG = 4096
SHUTDOWN_TIMEOUT_S = 10.0


def event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:  # uvloop does not build everywhere; asyncio's own loop serves too
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _run(app: web.Application, sock: socket.socket) -> None:
    # SIGINT / SIGTERM raise GracefulExit out of the loop (handle_signals); the finally then drains.
    runner = web.AppRunner(app, access_log=None, handle_signals=True, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    reloader = app[CONTEXT].reloader
    if reloader is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.request, "SIGHUP")
    try:
        await DrainingSite(runner, sock).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def tell_supervisor() -> None:
    """A supervised worker that reloaded on `POST /admin/reload` asks its parent to reload the others."""
    os.kill(os.getppid(), signal.SIGHUP)


def serve(loaded: LoadedPolicy, host: str, port: int, reuse_port: bool = False, open_ok: bool = True,
          watch_policy_s: float | None = 1.0, supervised: bool = False) -> int:
    try:  # before anything starts: a port in use is a one-line error, not a traceback
        sock = listening_socket(host, port, BACKLOG, reuse_port)
    except OSError as exc:
        print(f"recloser: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    event_loop_policy()
    # Every worker runs the quality canaries against its own view; together they stay within the budget.
    workers = int(os.environ.get(WORKERS_ENV, "1")) if reuse_port else 1
    app = build_app(loaded, open_ok=open_ok, watch_policy_s=watch_policy_s,
                    fan_out=tell_supervisor if supervised else None, canary_budget_split=max(1, workers))
    if not reuse_port:
        print(f"recloser: serving {loaded.source} on http://{host}:{port}/v1", flush=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_run(app, sock))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return 0
