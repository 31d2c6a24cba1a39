"""The operational surface: `/admin/*` behind an admin key with nothing said on refusal, `/metrics`
behind a key when the policy asks, no request header echoed, and HTTP that is not HTTP answered in
the OpenAI shape without quoting it back."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import aiohttp
import httpx
import pytest
from aiohttp import web

from gateway.serving.app import build_app
from gateway.serving.embedded import EmbeddedGateway
from gateway.policy.load import load_policy
from tests.conftest import GatewayFactory, serving, write_policy

ADMIN, USER, SCRAPER = "sk-admin-7e1d", "sk-user-51aa", "sk-scrape-90cc"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


POLICY = f"""
version: 1
operations: {{metrics_require_key: true}}
providers:
  up: {{kind: sim}}
routes:
  chat: {{targets: [{{provider: up, model: m}}]}}
auth:
  keys:
    - {{id: ops, sha256: {digest(ADMIN)}, team: platform, app: ops, admin: true}}
    - {{id: web, sha256: {digest(USER)}, team: search, app: web}}
    - {{id: prom, sha256: {digest(SCRAPER)}, team: platform, app: prometheus, metrics: true}}
"""
HELLO = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_bare_refusal(r: httpx.Response, status: int) -> None:
    """A refusal that says its status and nothing more."""
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] in ("Unauthorized.", "Forbidden.")
    assert "admin" not in r.text.lower() and "key" not in r.text.lower()


def test_the_admin_endpoints_refuse_without_a_key_or_with_the_wrong_one(gw: EmbeddedGateway) -> None:
    assert_bare_refusal(httpx.get(gw.url + "/admin/deployments"), 401)
    assert_bare_refusal(httpx.get(gw.url + "/admin/deployments", headers=bearer("sk-guess")), 401)
    assert_bare_refusal(httpx.get(gw.url + "/admin/deployments", headers={"Authorization": ADMIN}), 401)
    assert_bare_refusal(httpx.get(gw.url + "/admin/deployments", headers=bearer(USER)), 403)
    assert_bare_refusal(httpx.get(gw.url + "/admin/deployments", headers=bearer(SCRAPER)), 403)
    assert httpx.get(gw.url + "/admin/deployments", headers=bearer(ADMIN)).status_code == 200


@pytest.mark.parametrize("path", ["//admin/deployments", "/admin//deployments", "/admin/deployments/",
                                  "/admin/%64eployments", "/admin/./deployments", "/x/../admin/deployments"])
def test_a_disguised_admin_path_never_reaches_the_admin_view(gw: EmbeddedGateway, path: str) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b"".join(iter(lambda: s.recv(65536), b""))
    assert answer.split(b" ")[1] in (b"401", b"404"), answer[:200]
    assert b'"data"' not in answer


def test_an_admin_path_no_route_matches_is_refused_as_an_admin_route_would_be(gw: EmbeddedGateway) -> None:
    # An unknown caller cannot tell the admin routes that exist from those that do not.
    assert_bare_refusal(httpx.get(gw.url + "/admin/no-such-view"), 401)
    assert_bare_refusal(httpx.get(gw.url + "/admin/no-such-view", headers=bearer(USER)), 403)
    assert_bare_refusal(httpx.delete(gw.url + "/admin/deployments", headers=bearer(USER)), 403)
    r = httpx.get(gw.url + "/admin/no-such-view", headers=bearer(ADMIN))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_an_admin_route_added_later_is_guarded_by_the_same_check(tmp_path: Path) -> None:
    app = build_app(load_policy(write_policy(tmp_path, POLICY)), watch_loop_lag=False)

    async def reload(request: web.Request) -> web.Response:
        return web.json_response({"reloaded": True})

    app.router.add_post("/admin/reload", reload)
    async with serving(app) as port:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/admin/reload"
            async with http.post(url) as r:
                assert r.status == 401
            async with http.post(url, headers=bearer(USER)) as r:
                assert r.status == 403
            async with http.post(url, headers=bearer(ADMIN)) as r:
                assert r.status == 200


def test_metrics_want_a_metrics_or_admin_key_when_the_policy_says_so(gw: EmbeddedGateway) -> None:
    assert_bare_refusal(httpx.get(gw.url + "/metrics"), 401)
    assert_bare_refusal(httpx.get(gw.url + "/metrics", headers=bearer(USER)), 403)
    for key in (SCRAPER, ADMIN):
        r = httpx.get(gw.url + "/metrics", headers=bearer(key))
        assert r.status_code == 200 and "recloser_requests_total" in r.text


def test_no_endpoint_echoes_a_request_header(gw: EmbeddedGateway) -> None:
    marker = "zq7marker"
    headers = {"Authorization": f"Bearer {USER}", "Cookie": f"session={marker}", "X-Custom": marker,
               "User-Agent": marker, "Referer": f"http://{marker}/", "X-Forwarded-For": marker,
               "X-Request-Id": f"bad id {marker}", "x-recloser-provider": marker}
    calls = [("POST", "/v1/chat/completions", HELLO), ("POST", "/v1/chat/completions", {"model": "nope"}),
             ("POST", "/v1/embeddings", {"model": "chat"}), ("GET", "/v1/models", None), ("GET", "/healthz", None),
             ("GET", "/readyz", None), ("GET", "/admin/deployments", None), ("GET", "/metrics", None),
             ("GET", "/nowhere", None), ("DELETE", "/v1/chat/completions", None)]
    for method, path, body in calls:
        r = httpx.request(method, gw.url + path, json=body, headers=headers)
        assert marker not in r.text, (path, r.text[:200])
        assert all(marker not in v for v in r.headers.values()), (path, r.headers)


def raw(gw: EmbeddedGateway, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(data)
        return b"".join(iter(lambda: s.recv(65536), b""))


@pytest.mark.parametrize("request_bytes", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-secret-in-a-long-header-" + b"a" * 9000 + b"\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz-sk-secret\r\n",
    b"\x16\x03\x01sk-secret tls hello\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad\x01: sk-secret\r\n\r\n",
])
def test_a_request_that_is_not_http_gets_an_openai_error_that_quotes_nothing(gw: EmbeddedGateway,
                                                                              request_bytes: bytes) -> None:
    answer = raw(gw, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400", answer[:200]
    assert b"application/json" in head
    assert b'"code":"malformed_http"' in body and b"sk-secret" not in answer


@pytest.mark.parametrize(("encoding", "body", "status", "code"), [
    ("gzip", b'{"model": "chat"}', 400, "invalid_body_encoding"),
    ("deflate", b"not deflate", 400, "invalid_body_encoding"),
    ("compress", b'{"model": "chat"}', 415, "unsupported_content_encoding"),
    ("br", b'{"model": "chat"}', 400, "malformed_http"),  # aiohttp's parser refuses it before any endpoint
])
def test_a_body_that_is_not_the_encoding_it_claims_is_the_callers_error(gw: EmbeddedGateway, encoding: str,
                                                                        body: bytes, status: int, code: str) -> None:
    r = httpx.post(gw.base_url + "/chat/completions", content=body,
                   headers={"Content-Encoding": encoding, "Content-Type": "application/json", **bearer(USER)})
    assert r.status_code == status and r.json()["error"]["code"] == code
