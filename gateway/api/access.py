"""Who may reach the operational endpoints: one check, applied by path, for every `/admin/*` route
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


def route_path(request: web.Request) -> str:
    """The path of the route that matched (not the raw path, which `//admin/x` or `%2F` could disguise)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def needs(request: web.Request) -> str | None:
    """The scope the matched route asks for: 'admin', 'metrics', or None for an ordinary endpoint."""
    path = route_path(request)
    if path in OPEN_PAGES:
        return None
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return "admin"
    if path == METRICS_PATH and request.app[CONTEXT].policy.document.operations.metrics_require_key:
        return "metrics"
    return None


def allowed(caller: Caller | None, scope: str) -> ApiError | None:
    if caller is None:
        return unauthorized()
    if caller.admin or (scope == "metrics" and caller.metrics):
        return None
    return not_admin()


@web.middleware
async def operational_access(request: web.Request, handler: Handler) -> web.StreamResponse:
    scope = needs(request)
    if scope is not None:
        refusal = allowed(request.app[CONTEXT].auth.authenticate(gateway_authorization(request.headers)), scope)
        if refusal is not None:
            return error_response(refusal)
    return await handler(request)
