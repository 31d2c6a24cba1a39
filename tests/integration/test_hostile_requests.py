"""Hostile and malformed requests, generated, over raw HTTP to a running gateway: none gets a 5xx,
none a traceback or an internal detail, and every 4xx is in the endpoint's error shape.

Raw sockets, so that the framing itself can lie: Content-Length too short or too long, chunked bodies
that stop, Content-Encoding that is not what the body is, invalid UTF-8, odd headers.
"""

from __future__ import annotations

import gzip
import json
import socket
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.serving.embedded import EmbeddedGateway
from tests.conftest import GatewayFactory

POLICY = """
version: 1
limits: {max_body_bytes: 4194304, request_read_timeout_s: 5}
providers:
  up: {kind: sim, sim: {reply_tokens: 3}}
routes:
  chat: {targets: [{provider: up, model: up-model}]}
"""


def openai_error(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and set(error) == {"message", "type", "param", "code"} \
        and isinstance(error["message"], str) and isinstance(error["type"], str)


def anthropic_error(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return body.get("type") == "error" and isinstance(error, dict) \
        and isinstance(error.get("type"), str) and isinstance(error.get("message"), str)


# Every endpoint a client can send a body to, the body that would be valid there, and its error shape.
# An endpoint that lands later is one more row.
ENDPOINTS: dict[str, tuple[dict[str, Any], Callable[[Any], bool]]] = {
    "/v1/chat/completions": ({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}, openai_error),
    "/v1/completions": ({"model": "chat", "prompt": "hi"}, openai_error),
    "/v1/embeddings": ({"model": "chat", "input": "hi"}, openai_error),
    "/v1/responses": ({"model": "chat", "input": "hi"}, openai_error),
    "/v1/messages": ({"model": "chat", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
                     anthropic_error),
    "/v1/messages/count_tokens": ({"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
                                  anthropic_error),
}

LEAKS = (b"Traceback", b'File "', b"gateway/", b"site-packages", b"aiohttp", b"Exception", b"Error:")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["model", "messages", "prompt", "input", "stream", "max_tokens", "max_completion_tokens", "n",
          "temperature", "top_p", "tools", "stream_options", "user", "stop", "dimensions", "role", "content",
          "system", "tool_choice", "max_output_tokens", "previous_response_id", "instructions", "metadata"]
SPECIAL_VALUES = st.sampled_from([
    "true", "false", -1, -(10**6), 0, 10**30, 1e308, -1e308, "", "x" * 10_000, [], {}, [[]], [{}],
    [{"role": 5}], [{"role": "user", "content": {"nested": [1, 2]}}], [{"role": "user", "content": "é" * 1000}],
    [{"role": "user", "content": "a" * (2 * 1024 * 1024)}], [{"role": "user", "content": ""}],
    [{"role": "user", "content": [{"type": "text", "text": 5}, {"type": "image_url"}]}],
    [{"role": "user", "content": "hi"}] * 50,
])


@st.composite
def bodies(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """A JSON body near a valid one: fields removed, retyped, made huge; sometimes not JSON at all."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "deep", "not_object", "bad_utf8", "truncated",
                                 "empty", "garbage"]))
    body = dict(valid)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        field = draw(st.sampled_from(FIELDS))
        action = draw(st.sampled_from(["drop", "value", "special"]))
        if action == "drop":
            body.pop(field, None)
        else:
            body[field] = draw(json_values if action == "value" else SPECIAL_VALUES)
    raw = json.dumps(body, allow_nan=True).encode()
    if kind == "deep":
        depth = draw(st.integers(min_value=200, max_value=20_000))
        raw = raw[:-1] + b', "messages": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "not_object":
        raw = json.dumps(draw(json_values)).encode()
    elif kind == "bad_utf8":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"])) + raw[at:]
    elif kind == "truncated":
        raw = raw[: draw(st.integers(min_value=0, max_value=max(0, len(raw) - 1)))]
    elif kind == "empty":
        raw = b""
    elif kind == "garbage":
        raw = draw(st.binary(max_size=200))
    return raw


ODD_HEADERS = st.sampled_from([
    b"Content-Type: text/plain", b"Content-Type: application/json; charset=latin-1", b"Authorization: Basic Zm9v",
    b"Authorization: Bearer " + b"k" * 4000, b"X-Request-Id: ../../etc/passwd", b"X-Request-Id: " + b"r" * 200,
    b"X-Weird: \xff\xfe\xfd", b"Accept: text/html", b"Accept-Encoding: br", b"Expect: 100-continue",
    b"X-Forwarded-For: 127.0.0.1, evil", b"Cookie: session=secret", b"Content-Type: multipart/form-data",
    b"x-recloser-provider: evil", b"Connection: keep-alive, Upgrade", b"Upgrade: websocket",
])
FRAMINGS = ["exact", "exact", "exact", "short_length", "long_length", "chunked", "chunked_stops", "gzip", "deflate",
            "gzip_lie", "deflate_lie", "odd_encoding", "both_lengths"]


@dataclass(frozen=True)
class RawRequest:
    path: str
    body: bytes
    framing: str
    headers: tuple[bytes, ...]

    def __repr__(self) -> str:  # a failing example stays readable when its body is megabytes
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"...(%d bytes)" % len(self.body)
        return f"RawRequest({self.path!r}, {body!r}, framing={self.framing!r}, headers={self.headers!r})"

    def wire(self) -> tuple[bytes, bool]:
        """The bytes to send, and whether the client then stops sending (closes its write side)."""
        body, head, stops = self.body, [b"Host: gateway", b"Connection: close", *self.headers], False
        if self.framing in ("gzip", "gzip_lie"):
            head.append(b"Content-Encoding: gzip")
            body = gzip.compress(body) if self.framing == "gzip" else body
        elif self.framing in ("deflate", "deflate_lie"):
            head.append(b"Content-Encoding: deflate")
            body = zlib.compress(body) if self.framing == "deflate" else body
        elif self.framing == "odd_encoding":
            head.append(b"Content-Encoding: zstd-but-not-really")
        if self.framing in ("chunked", "chunked_stops"):
            head.append(b"Transfer-Encoding: chunked")
            payload = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            if self.framing == "chunked_stops":
                payload, stops = payload[: len(payload) // 2], True
            else:
                payload += b"0\r\n\r\n"
            body = payload
        elif self.framing == "short_length":
            head.append(b"Content-Length: %d" % max(0, len(body) // 2))
        elif self.framing == "long_length":
            head.append(b"Content-Length: %d" % (len(body) + 100))
            stops = True
        elif self.framing == "both_lengths":
            head += [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"]
        else:
            head.append(b"Content-Length: %d" % len(body))
        return b"POST " + self.path.encode() + b" HTTP/1.1\r\n" + b"\r\n".join(head) + b"\r\n\r\n" + body, stops


@st.composite
def raw_requests(draw: st.DrawFn) -> RawRequest:
    path = draw(st.sampled_from(sorted(ENDPOINTS)))
    return RawRequest(path, draw(bodies(ENDPOINTS[path][0])), draw(st.sampled_from(FRAMINGS)),
                      tuple(draw(st.lists(ODD_HEADERS, max_size=3))))


def exchange(port: int, data: bytes, stops: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        try:
            s.sendall(data)
            if stops:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway answered (and closed) before it had all of it: the answer is still there
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def final_answer(response: bytes) -> bytes:
    """Without the interim answer to `Expect: 100-continue`."""
    while response.startswith(b"HTTP/1.1 100 "):
        response = response.partition(b"\r\n\r\n")[2]
    return response


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return status, headers, body


def dechunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2:]
    return b"".join(out)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedGateway]:
    from gateway.policy.load import load_policy

    path = tmp_path_factory.mktemp("hostile") / "policy.yaml"
    path.write_text(POLICY)
    with EmbeddedGateway(load_policy(path)) as gw:
        yield gw


def test_no_generated_request_gets_a_5xx_a_traceback_or_an_error_out_of_shape(gateway: EmbeddedGateway) -> None:
    seen: dict[int, int] = {}
    sent = 0

    @settings(max_examples=520, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(request=raw_requests())
    def answers_well(request: RawRequest) -> None:
        nonlocal sent
        sent += 1
        data, stops = request.wire()
        response = final_answer(exchange(gateway.port, data, stops))
        if stops and not response:
            return  # a client that stopped sending mid-body is gone as far as HTTP/1.1 goes: closed, at once
        assert response, f"no answer at all to {request.framing} on {request.path}"
        status, headers, body = parse(response)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (status, body[:300])
        for leak in LEAKS:
            assert leak not in body, (leak, body[:300])
        if status >= 400:
            assert headers.get("content-type", "").startswith("application/json"), (status, headers, body[:200])
            assert ENDPOINTS[request.path][1](json.loads(body)), body[:300]

    answers_well()
    # Only worth its examples if they reached the endpoints as well as the guards in front of them.
    assert sent >= 500 and sum(seen.values()) >= 400, (sent, seen)
    assert seen.get(200, 0) >= 20 and seen.get(400, 0) >= 100, seen
