"""A relayed stream's objects go when it ends, by reference counting: thousands of streams end a minute,
and what only a collection could free would pile up for it (and pause the process to find)."""

from __future__ import annotations

import gc
import socket

from gateway.quality.answer_read import StreamWatch
from gateway.routing.request_log import RequestLog
from tests.conftest import GatewayFactory

POLICY = """
version: 1
providers:
  up: {kind: sim, sim: {reply_tokens: 20}}
routes:
  chat: {targets: [{provider: up, model: m}]}
"""
BODY = b'{"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hello there"}]}'


def alive(kind: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is kind)


def test_a_finished_stream_leaves_nothing_for_the_collector_to_free(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
                answer = b"".join(iter(lambda: s.recv(65536), b""))
            assert b"data: [DONE]" in answer
        gw.run(gw.context.meter.drain())
        # The answer checks watched each stream (default policy): neither watch nor log outlives it.
        assert alive(StreamWatch) == 0
        assert alive(RequestLog) == 0
    finally:
        gc.enable()
