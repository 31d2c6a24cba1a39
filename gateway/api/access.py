"""Who may reach the operational endpoints: one check, applied by route, for every `/admin/*` route
(whoever adds it) and for `/metrics` when the policy wants a key for it.

A refusal says only 401 or 403: nothing about which keys exist, what they may do, or why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.api.callers import gateway_authorization
from gateway.core.errors import ApiError, error_response, not_admin, unauthorized
from gateway.core.auth import Caller
from gateway.flow.context import CONTEXT

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ADMIN_PREFIX = "/admin"
# The console's page and its files hold no data: the page asks for an admin key and reads
# /admin/state with it, which is checked like every other /admin route.
OPEN_PAGES = frozenset({"/admin/ui", "/admin/ui/console.js", "/admin/ui/console.css"})
METRICS_PATH = "/metrics"


def scope_of(path: str) -> str | None:
    """The scope a path asks for: 'admin' for every `/admin` route but the console's open pages,
    'metrics' for `/metrics` (wanted only when the policy says so), None for an ordinary endpoint."""
    if path in OPEN_PAGES:
        return None
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return "admin"
    if path == METRICS_PATH:
        return "metrics"
    return None


def allowed(caller: Caller | None, scope: str) -> ApiError | None:
    if caller is None:
        return unauthorized()
    if caller.admin or (scope == "metrics" and caller.metrics):
        return None
    return not_admin()


def refusal(request: web.Request, scope: str | None) -> ApiError | None:
    """Why this request may not have what `scope` guards, or None when it may."""
    if scope is None:
        return None
    ctx = request.app[CONTEXT]
    if scope == "metrics" and not ctx.policy.document.operations.metrics_require_key:
        return None
    return allowed(ctx.auth.authenticate(gateway_authorization(request.headers)), scope)


GUARDED = "recloser_scope"    # marks a handler already behind the check


def _guarded(handler: Handler, scope: str) -> Handler:
    async def checked(request: web.Request) -> web.StreamResponse:
        refused = refusal(request, scope)
        if refused is not None:
            return error_response(refused)
        return await handler(request)

    checked.__dict__[GUARDED] = scope
    return checked


async def guard_operational_routes(app: web.Application) -> None:
    """At start-up, once every route is in: each operational route's handler, whoever added it,
    behind the check. The route that matched decides (not the raw path, which `//admin/x` or `%2F`
    could disguise), and ordinary endpoints carry no wrapper of their own: an open stream is a chain
    of suspended calls, each a few hundred bytes, held for minutes."""
    for route in app.router.routes():
        resource = route.resource
        scope = scope_of(resource.canonical) if resource is not None else None
        handler = route.handler
        if scope is not None and GUARDED not in getattr(handler, "__dict__", {}):
            route._handler = _guarded(handler, scope)  # type: ignore[assignment]  # aiohttp has no setter
