"""SIGTERM: /readyz turns 503 at once, a stream in flight finishes, the ledger has it, the exit is 0;
with one process and with `--workers 2`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, write_policy

ROOT = Path(__file__).resolve().parents[2]


def policy(ledger: Path) -> str:
    return f"""
    version: 1
    limits: {{shutdown_grace_s: 20}}
    providers:
      up: {{kind: sim, sim: {{reply_tokens: 40, chunk_delay_s: 0.05}}}}
    routes:
      chat: {{targets: [{{provider: up, model: m}}]}}
    metering:
      ledger: {{path: "{ledger}"}}
    """


def wait_until_ready(url: str, proc: subprocess.Popen[bytes], workers: int) -> None:
    """Until every worker answers ready (a process starting up cannot be awaited from outside)."""
    deadline = time.monotonic() + 60
    pids: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                pids.add(httpx.get(url + "/healthz", timeout=1).json()["pid"])
                if len(pids) >= workers:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the gateway never became ready: {proc.poll()}")


def open_stream(port: int) -> tuple[socket.socket, bytes]:
    """A streamed chat, read up to its first token; the rest stays in flight."""
    body = b'{"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    first = b""
    while b"data: " not in first:
        chunk = s.recv(65536)
        assert chunk, first
        first += chunk
    return s, first


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_turns_unready_at_once_lets_the_stream_finish_and_exits_clean(tmp_path: Path, workers: int) -> None:
    ledger = tmp_path / "spend.jsonl"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--policy",
                             str(write_policy(tmp_path, policy(ledger))), "--port", str(port),
                             "--workers", str(workers)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_ready(url, proc, workers)
        stream, first = open_stream(port)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        while httpx.get(url + "/readyz", timeout=2).status_code != 503:  # bounded by the assert below
            assert time.monotonic() - signalled < 1.0, "still ready a second after SIGTERM"
        for _ in range(4):  # whichever worker answers
            r = httpx.get(url + "/readyz", timeout=2)
            assert r.status_code == 503 and r.json()["status"] == "draining"
        rest = b"".join(iter(lambda: stream.recv(65536), b""))
        stream.close()
        body = first + rest
        assert body.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), body[-200:]  # the last event, the last chunk
        assert b"t39" in body  # every token of the answer
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - signalled < 20
        records = [json.loads(line) for line in ledger.read_text().splitlines()]
        assert [(r["outcome"], r["output_tokens"], r["stream"]) for r in records] == [("ok", 40, True)]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
