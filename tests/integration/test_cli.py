"""The `recloser` command line: check, serve's safety rule, and the demo end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.serving.listener import listening_socket
from tests.conftest import write_policy

ROOT = Path(__file__).resolve().parents[2]


def recloser(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_check_accepts_the_default_policy() -> None:
    result = recloser("check", "policies/default.yaml")
    assert result.returncode == 0, result.stderr
    assert "policies/default.yaml: ok" in result.stdout


def test_check_refuses_a_bad_file_with_file_line_and_reason(tmp_path: Path) -> None:
    good = write_policy(tmp_path, "version: 1\nproviders: {a: {kind: sim}}\nroutes: {r: {targets: [{provider: a, model: m}]}}\n", "good.yaml")
    bad = write_policy(tmp_path, "version: 1\nproviders: {a: {kind: sim}}\nroutes:\n  r: {targets: [{provider: b, model: m}]}\n", "bad.yaml")
    result = recloser("check", str(good), str(bad))
    assert result.returncode == 1
    assert f"{bad}:4: routes.r.targets[0].provider: unknown provider 'b'" in result.stderr


def test_serve_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    result = recloser("serve", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert "loopback only" in result.stderr


def test_serve_names_a_port_in_use_in_one_line() -> None:
    taken = listening_socket("127.0.0.1", 0, backlog=8)
    try:
        result = recloser("serve", "--port", str(taken.getsockname()[1]), timeout=60)
    finally:
        taken.close()
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1:" in result.stderr and "in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_runs_end_to_end_and_shows_the_failover() -> None:
    result = recloser("demo", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [(line[:18].strip(), line[19:31].strip(), line[32:44].strip(), line[56:].strip())
            for line in result.stdout.splitlines() if line.startswith(("all healthy", "frontier down"))]
    calls = ["chat", "chat stream", "tool call", "embedding"]
    assert [(phase, call) for phase, call, _, _ in rows] == \
        [("all healthy", c) for c in calls] + [("frontier down", c) for c in calls]
    assert all(provider == "frontier" for phase, _, provider, _ in rows if phase == "all healthy")
    down = {call: provider for phase, call, provider, _ in rows if phase == "frontier down"}
    assert down == {"chat": "anthropic", "chat stream": "anthropic", "tool call": "anthropic",
                    "embedding": "local-gpu"}
    assert all(status.startswith("ok") for _, _, _, status in rows)
    assert "8 of 8 calls answered" in result.stdout
