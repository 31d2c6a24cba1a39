"""Real processes for tests of replicas: simulated providers and gateways, each its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _wait_until_answering(proc: subprocess.Popen[bytes], url: str, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:  # polled: a process that starts has no other way to say it is ready (bounded)
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer on {url}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class SimProcess:
    """`python -m gateway.sim`: one simulated OpenAI-wire provider."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.sim", "--port", str(self.port), "--name", name,
                                      "--reply-tokens", "8"], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self) -> SimProcess:
        _wait_until_answering(self.proc, self.url + "/_sim/stats", f"sim {self.name}")
        return self

    def set_fault(self, **fault: Any) -> None:
        httpx.post(self.url + "/_sim/fault", json=fault, timeout=5).raise_for_status()

    def requests(self) -> int:
        return int(httpx.get(self.url + "/_sim/stats", timeout=5).json()["requests"])

    def stop(self) -> None:
        _stop(self.proc)


class GatewayProcess:
    """`python -m gateway serve`: one replica."""

    def __init__(self, policy: Path) -> None:
        self.port = free_port()
        self.policy = policy
        self.log = policy.parent / f"gateway-{self.port}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--policy", str(policy), "--port",
                                          str(self.port)], cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def wait(self) -> GatewayProcess:
        _wait_until_answering(self.proc, self.url + "/readyz", f"gateway on {self.port}")
        return self

    def state_of(self, provider: str, headers: dict[str, str] | None = None) -> str:
        rows = httpx.get(self.url + "/admin/deployments", headers=headers, timeout=5).json()["data"]
        return str(next(r["state"] for r in rows if r["provider"] == provider))

    def metric(self, name: str) -> float | None:
        for line in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def stop(self) -> str:
        """Stops the replica; returns what it wrote to stderr (its log)."""
        _stop(self.proc)
        return self.log.read_text(errors="replace")
