"""Serving one process: the event loop (uvloop where it installs), signals, and a graceful shutdown.

On SIGTERM (or SIGINT) `/readyz` turns 503 at once, so a load balancer stops sending; the listener
stays open and requests in flight (streams included) get `limits.shutdown_grace_s` to finish. The
gateway stops as soon as none is left, or when the grace runs out (what is still running then is
cancelled, and recorded as such); the spend ledger is flushed on the way out and the exit code is 0.
SIGHUP reloads the policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

from aiohttp import web

from gateway.serving.app import build_app
from gateway.serving.capacity import raise_fd_limit, settle_collector, watch_collector
from gateway.serving.collector_freeze import CollectorFreeze, Thawing
from gateway.flow.context import CONTEXT
from gateway.serving.listener import DrainingSite, listening_socket
from gateway.policy.load import LoadedPolicy
from gateway.serving.workers import WORKERS_ENV

# A deep accept backlog: under overload a connection should wait to be shed with a 503, not be
# dropped into the kernel's SYN retries (seconds).
BACKLOG = 4096
# After the grace: how long aiohttp waits for cancelled handlers to unwind before closing.
UNWIND_S = 1.0


def event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:  # uvloop does not build everywhere; asyncio's own loop serves too
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def metrics_app() -> web.Application:
    """/metrics alone, for a listener of its own (`--metrics-port`): spend per team need not be on
    the port every client reaches."""
    from gateway.api.handlers import metrics

    app = web.Application(handler_args={"access_log": None})
    app.router.add_get("/metrics", metrics)
    return app


async def _run(app: web.Application, sock: socket.socket, metrics_sock: socket.socket | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True,
                           shutdown_timeout=UNWIND_S)
    await runner.setup()
    ctx = app[CONTEXT]
    # What start-up made lives as long as the process: out of every later collection.
    settle_collector()
    freeze = CollectorFreeze(ctx.limits.collector_freeze_in_flight, lambda: ctx.admission.in_flight)

    def collected(generation: int, seconds: float) -> None:
        ctx.metrics.collector_pauses(str(generation)).observe(seconds)
        before = freeze.freezes
        freeze.collected(generation)
        if freeze.freezes > before:
            ctx.metrics.collector_freezes("freeze").inc()

    watch_collector(collected)
    thawing = Thawing(loop, freeze, lambda: ctx.metrics.collector_freezes("thaw").inc())
    if ctx.reloader is not None:
        loop.add_signal_handler(signal.SIGHUP, ctx.reloader.request, "SIGHUP")
    side: web.AppRunner | None = None
    try:
        await DrainingSite(runner, sock, ctx.limits.request_read_timeout_s).start()
        if metrics_sock is not None:
            side_app = metrics_app()
            side_app[CONTEXT] = ctx
            side = web.AppRunner(side_app, access_log=None, handle_signals=False)
            await side.setup()
            await DrainingSite(side, metrics_sock, ctx.limits.request_read_timeout_s).start()
        await stop.wait()
        await drain(app)
    finally:
        if side is not None:
            await side.cleanup()
        await runner.cleanup()  # closes the listener, cancels what is left, flushes the ledger
        thawing.stop()


async def drain(app: web.Application) -> None:
    """Not ready from now on; returns when no request is in flight or the grace is over."""
    ctx = app[CONTEXT]
    ctx.ready, ctx.draining = False, True
    if ctx.holds is not None and ctx.holds.held:
        ctx.holds.expire_all()      # held requests get their error now, not a connection cut at the end
        await asyncio.sleep(0)      # … and count as in flight again until they have written it
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ctx.limits.shutdown_grace_s):
            await ctx.admission.drained()


def tell_supervisor() -> None:
    """A supervised worker that reloaded on `POST /admin/reload` asks its parent to reload the others."""
    os.kill(os.getppid(), signal.SIGHUP)


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket | None:
    try:  # before anything starts: a port in use is a one-line error, not a traceback
        return listening_socket(host, port, BACKLOG, reuse_port)
    except OSError as exc:
        print(f"recloser: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return None


def serve(loaded: LoadedPolicy, host: str, port: int, reuse_port: bool = False, open_ok: bool = True,
          watch_policy_s: float | None = 1.0, supervised: bool = False, metrics_host: str = "127.0.0.1",
          metrics_port: int | None = None) -> int:
    raise_fd_limit()   # before the policy sizes admission from it
    sock = _listen(host, port, reuse_port)
    if sock is None:
        return 2
    metrics_sock = None
    if metrics_port is not None:
        metrics_sock = _listen(metrics_host, metrics_port, reuse_port)
        if metrics_sock is None:
            sock.close()
            return 2
    event_loop_policy()
    # Every worker runs the quality canaries against its own view; together they stay within the budget.
    workers = int(os.environ.get(WORKERS_ENV, "1")) if reuse_port else 1
    app = build_app(loaded, open_ok=open_ok, watch_policy_s=watch_policy_s,
                    fan_out=tell_supervisor if supervised else None, canary_budget_split=max(1, workers),
                    metrics_route=metrics_sock is None)
    if not reuse_port:
        print(f"recloser: serving {loaded.source} on http://{host}:{port}/v1", flush=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_run(app, sock, metrics_sock))
    try:
        loop.run_until_complete(main)
    except KeyboardInterrupt:
        pass
    finally:
        if not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return 0
