"""A fake OpenAI-wire upstream that answers in microseconds, so a benchmark measures the gateway.

A raw asyncio protocol with keep-alive and precomputed answers: `POST .../chat/completions` gets a
small `chat.completion`, or with `"stream": true` a 20-chunk SSE stream (plus a usage chunk when
`include_usage` is asked) in one write. Run: `python tests/perf/fake_upstream.py --port 9100`.
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


def _response(body: bytes, content_type: bytes, chunked: bool) -> bytes:
    if not chunked:
        return (b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nContent-Length: " +
                str(len(body)).encode() + b"\r\n\r\n" + body)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
            f"{len(body):x}".encode() + b"\r\n" + body + b"\r\n0\r\n\r\n")


WHOLE = _response(_completion(), b"application/json", chunked=False)
STREAM = _response(_stream(False), b"text/event-stream", chunked=True)
STREAM_USAGE = _response(_stream(True), b"text/event-stream", chunked=True)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
HEALTH = _response(b'{"status":"ok"}', b"application/json", chunked=False)


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
        if not path.endswith(b"/chat/completions"):
            return NOT_FOUND
        if b'"stream":true' in body or b'"stream": true' in body:
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
