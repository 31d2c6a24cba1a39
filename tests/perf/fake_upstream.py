"""A fake upstream that answers in microseconds, so a benchmark measures the gateway.

A raw asyncio protocol with keep-alive and precomputed answers. OpenAI wire: `POST
.../chat/completions` gets a small `chat.completion`, or with `"stream": true` a 20-chunk SSE stream
(plus a usage chunk when `include_usage` is asked) in one write. Anthropic wire: `POST /v1/messages`
gets a small `message`, or with `"stream": true` the Messages event sequence with 20 text deltas,
in one write. OTLP: `POST /v1/traces` is taken and answered at once, as a collector would (the
benchmark's traced gateway sends its spans here). Run: `python tests/perf/fake_upstream.py --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import orjson

CHUNKS = 20


def _completion() -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello " * 20}, "finish_reason": "stop",
                     "logprobs": None}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32,
                  "prompt_tokens_details": {"cached_tokens": 0}}})


def _stream(usage: bool) -> bytes:
    def event(delta: dict[str, object], finish: str | None = None) -> bytes:
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    out = event({"role": "assistant", "content": ""})
    out += b"".join(event({"content": "hello "}) for _ in range(CHUNKS))
    out += event({}, "stop")
    if usage:
        out += b"data: " + orjson.dumps({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                                         "model": "gpt-4o-mini", "choices": [],
                                         "usage": {"prompt_tokens": 12, "completion_tokens": 20,
                                                   "total_tokens": 32}}) + b"\n\n"
    return out + b"data: [DONE]\n\n"


def _message() -> bytes:
    return orjson.dumps({
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake",
        "content": [{"type": "text", "text": "hello " * CHUNKS}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": CHUNKS, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0}})


def _message_stream() -> bytes:
    def event(name: str, data: dict[str, object]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"

    start = {"id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake", "content": [],
             "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0,
                       "cache_read_input_tokens": 0}}
    out = event("message_start", {"message": start})
    out += event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    out += event("ping", {})
    out += b"".join(event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "hello "}})
                    for _ in range(CHUNKS))
    out += event("content_block_stop", {"index": 0})
    out += event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": CHUNKS}})
    return out + event("message_stop", {})


def _response(body: bytes, content_type: bytes, chunked: bool) -> bytes:
    if not chunked:
        return (b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nContent-Length: " +
                str(len(body)).encode() + b"\r\n\r\n" + body)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
            f"{len(body):x}".encode() + b"\r\n" + body + b"\r\n0\r\n\r\n")


WHOLE = _response(_completion(), b"application/json", chunked=False)
STREAM = _response(_stream(False), b"text/event-stream", chunked=True)
STREAM_USAGE = _response(_stream(True), b"text/event-stream", chunked=True)
MESSAGE = _response(_message(), b"application/json", chunked=False)
MESSAGE_STREAM = _response(_message_stream(), b"text/event-stream", chunked=True)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
HEALTH = _response(b'{"status":"ok"}', b"application/json", chunked=False)
TRACES_TAKEN = _response(b"", b"application/x-protobuf", chunked=False)   # an empty ExportTraceServiceResponse


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            assert self.transport is not None
            self.transport.write(self.answer(head.split(b" ", 2)[:2], body))

    @staticmethod
    def answer(request_line: list[bytes], body: bytes) -> bytes:
        method, path = request_line[0], request_line[1] if len(request_line) > 1 else b""
        if method == b"GET":
            return HEALTH
        streamed = b'"stream":true' in body or b'"stream": true' in body
        if path.endswith(b"/v1/messages"):
            return MESSAGE_STREAM if streamed else MESSAGE
        if path.endswith(b"/v1/traces"):
            return TRACES_TAKEN
        if not path.endswith(b"/chat/completions"):
            return NOT_FOUND
        if streamed:
            return STREAM_USAGE if b'"include_usage":true' in body or b'"include_usage": true' in body else STREAM
        return WHOLE


async def serve(port: int, listening: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, reuse_address=True, backlog=1024)
    if listening is not None:
        listening.set()
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=9100)
    args = p.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
