"""Every recorded client request, sent over HTTP to a gateway whose route's target speaks the client's
own API, reaches the (simulated) upstream as the client wrote it: only `model` changes, and the
`anthropic-beta` / `anthropic-version` headers arrive as sent.

The request goes with its captured headers and query string, the Recloser key in place of the
redacted one. Whether the upstream then likes it is not the point here: the recorded turns carry
reasoning blobs and ids that the recording upstream made up, which a real API (and its simulator)
may refuse, and a refusal from the upstream is relayed as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.policy.load import load_policy
from tests.conftest import write_policy
from tests.unit.test_client_corpus import CAPTURED, Captured

KEY = "sk-recloser-corpus-client"
SECRET_HEADERS = ("authorization", "x-api-key", "api-key")
# The route for each of the client's APIs, and the provider behind it, which speaks that API.
ROUTES = {"chat": ("corpus-chat", "openai"), "responses": ("corpus-responses", "openai"),
          "messages": ("corpus-messages", "claude")}
UPSTREAM_MODEL = "upstream-model"
POLICY = f"""
version: 1
providers:
  openai: {{kind: sim, sim: {{wire: openai, reply_tokens: 3}}}}
  claude: {{kind: sim, sim: {{wire: anthropic, reply_tokens: 3}}}}
routes:
  corpus-chat: {{targets: [{{provider: openai, model: {UPSTREAM_MODEL}}}]}}
  corpus-responses: {{targets: [{{provider: openai, model: {UPSTREAM_MODEL}}}]}}
  corpus-messages: {{targets: [{{provider: claude, model: {UPSTREAM_MODEL}}}]}}
auth:
  keys:
    - {{id: corpus, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, team: dev, app: corpus}}
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedGateway]:
    """One gateway for the whole corpus: each request is told apart by what the simulator saw after it."""
    policy = write_policy(tmp_path_factory.mktemp("corpus"), POLICY)
    gateway = EmbeddedGateway(load_policy(policy)).start()
    yield gateway
    gateway.stop()


def headers_as_sent(captured: Captured) -> dict[str, str]:
    """The client's headers, the Recloser key where it had sent its own."""
    headers = dict(captured.headers)
    for name in SECRET_HEADERS:
        if name in headers:
            headers[name] = f"Bearer {KEY}" if name == "authorization" else KEY
    return headers


def send(gw: EmbeddedGateway, captured: Captured, body: dict[str, Any]) -> httpx.Response:
    route, _ = ROUTES[captured.endpoint]
    with httpx.Client(timeout=30) as http:
        return http.post(gw.url + captured.path, content=orjson.dumps({**body, "model": route}),
                         headers=headers_as_sent(captured))


def response_id(answer: httpx.Response) -> str:
    """The id of the Response the gateway served: the whole body's, or the stream's terminal event's."""
    if answer.headers.get("content-type", "").startswith("application/json"):
        return str(answer.json()["id"])
    for line in reversed(answer.text.splitlines()):
        if line.startswith("data: ") and '"response.completed"' in line:
            return str(orjson.loads(line[6:])["response"]["id"])
    raise AssertionError(f"no Response id in the answer: {answer.text[:300]}")


def continued(gw: EmbeddedGateway, captured: Captured) -> dict[str, Any]:
    """The captured body; a `previous_response_id` it continues names the Response the gateway
    served for the request recorded just before it (the turn it continues), as a client would."""
    body = captured.body
    if body.get("previous_response_id"):
        before = CAPTURED[CAPTURED.index(captured) - 1]
        body["previous_response_id"] = response_id(send(gw, before, before.body))
    return body


def expected(captured: Captured, body: dict[str, Any]) -> dict[str, Any]:
    """The body with the target's model; a chat stream also asks for usage, which metering needs
    (the one addition a pass-through makes, and only when the client did not ask itself)."""
    out = {**body, "model": UPSTREAM_MODEL}
    if captured.endpoint == "chat" and body.get("stream"):
        out["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return out


@pytest.mark.parametrize("captured", CAPTURED, ids=lambda c: c.name)
def test_the_upstream_gets_the_clients_request_with_only_the_model_changed(gw: EmbeddedGateway,
                                                                           captured: Captured) -> None:
    _, provider = ROUTES[captured.endpoint]
    body = continued(gw, captured)
    sim = gw.sim(provider)
    seen_before = len(sim.requests)
    answer = send(gw, captured, body)
    arrived = sim.requests[seen_before:]
    assert arrived, (f"{captured.name}: the gateway did not pass it on; it answered "
                     f"{answer.status_code}: {answer.text[:400]}")
    first = arrived[0]
    assert first.body == expected(captured, body), f"{captured.name}: the upstream got another body"
    if len(arrived) > 1:
        # Reasoning the recorder sealed is not the simulator's to read: the gateway tried once more
        # without it, and said so.
        assert answer.headers.get("x-recloser-dropped") == "reasoning", f"{captured.name}: sent twice"
        assert arrived[1].body["input"] == [i for i in first.body["input"] if i.get("type") != "reasoning"]
    upstream = first
    for name in ("anthropic-beta", "anthropic-version"):
        if name in captured.headers:
            got = {k.lower(): v for k, v in upstream.headers.items()}.get(name)
            assert got == captured.headers[name], f"{captured.name}: {name} arrived as {got!r}"
