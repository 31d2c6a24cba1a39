"""The console's endpoints: the page and its two files (no data in them, so no key is asked for), and
the state (admin keys only: gateway/api/access.py checks every /admin route but the page's)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Final

import orjson
from aiohttp import web

from gateway.flow.context import CONTEXT
from gateway.serving.console.state import Parts, console_state

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PAGE_PATH: Final = "/admin/ui"
STATE_PATH: Final = "/admin/state"
# The page's own files only: no inline script or style, nothing from elsewhere, never in a frame.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC = files("gateway.serving.console") / "static"
# name → (body, content type), read once: three small files.
ASSETS: Final = {
    PAGE_PATH: ((_STATIC / "index.html").read_bytes(), "text/html"),
    f"{PAGE_PATH}/console.js": ((_STATIC / "console.js").read_bytes(), "text/javascript"),
    f"{PAGE_PATH}/console.css": ((_STATIC / "console.css").read_bytes(), "text/css"),
}


def _file(body: bytes, content_type: str) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        if not request.app[CONTEXT].policy.document.operations.console:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS)
    return serve


async def state(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    runtime = ctx.runtime
    holds = ctx.holds
    parts = Parts(routes=tuple(runtime.routing.routes.values()), healths=ctx.board.healths, probes=ctx.board.probes,
                  traffic=runtime.dispatcher.attempts.traffic, pools=ctx.pools,
                  failovers=runtime.dispatcher.failovers, budgets=runtime.meter.budgets, spend=runtime.meter.today,
                  policy=runtime.policy.source, policy_sha256=runtime.policy.sha256, pid=os.getpid(),
                  held={name: rh.waiting for name, rh in holds.routes.items()} if holds is not None else None,
                  max_held=holds.max_held if holds is not None else None)
    body = orjson.dumps(console_state(parts, ctx.board.clock(), runtime.meter.wall()))
    return web.Response(body=body, content_type="application/json", headers=SECURITY_HEADERS)


def add_routes(app: web.Application) -> None:
    for path, (body, content_type) in ASSETS.items():
        app.router.add_get(path, _file(body, content_type))
    app.router.add_get(STATE_PATH, state)
