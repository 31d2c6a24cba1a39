"""The ops commands end to end: check's advice, simulate, import-litellm, and serve's log options."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.integration.test_cli import ROOT, recloser

KEYS = {"OPENAI_API_KEY": "sk-o", "AZURE_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-an"}


def test_check_warns_about_a_route_with_a_single_target() -> None:
    result = recloser("check", "policies/default.yaml")
    assert result.returncode == 0, result.stderr
    assert "policies/default.yaml:" in result.stdout and "routes.local: a single target" in result.stdout


def test_simulate_says_where_traffic_goes_when_a_provider_is_down() -> None:
    result = recloser("simulate", "--policy", "policies/default.yaml", "--down", "frontier,local-gpu")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Scenario: frontier down, local-gpu down" in out
    assert "then:  anthropic/claude-3-5-haiku-latest 100%  ($0.80 in / $4.00 out per 1M tokens)" in out
    assert "Routes with nothing left: local, embed" in out


def test_simulate_refuses_a_provider_the_policy_does_not_have() -> None:
    result = recloser("simulate", "--policy", "policies/default.yaml", "--down", "openia")
    assert result.returncode == 2 and "no provider openia" in result.stderr


def test_import_litellm_writes_a_policy_that_passes_check_and_warns_about_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "imported.yaml"
    result = recloser("import-litellm", "examples/litellm/unsupported.yaml", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "warning: examples/litellm/unsupported.yaml: router_settings.redis_host: not carried over" in result.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT), **KEYS}
    checked = subprocess.run([sys.executable, "-m", "gateway", "check", str(out)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert f"{out}: ok" in checked.stdout


def test_import_litellm_prints_the_policy_when_no_output_is_given() -> None:
    result = recloser("import-litellm", "examples/litellm/simple.yaml")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("# Imported from the LiteLLM proxy config examples/litellm/simple.yaml")


def test_serve_logs_one_json_line_per_request_with_log_format_json(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port), "--log-level", "info",
                             "--log-format", "json", "--watch-seconds", "0"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "RECLOSER_POLICY": str(ROOT / "policies" / "default.yaml")},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=10,
                       json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == r.headers["x-request-id"]]
    assert len(mine) == 1 and mine[0]["provider"] == "local-gpu" and mine[0]["status"] == 200
