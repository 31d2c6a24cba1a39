"""Secret hygiene: with distinctive keys configured, a battery of calls (answers, upstream errors, an
upstream that quotes its key back, auth failures, admin endpoints, metrics, bad policies) never shows
an upstream key or a client key anywhere: not in a body or header, not in /metrics, the ledger, the
admin output, nor in the gateway's own stdout and stderr (run as `python -m gateway serve`, at DEBUG)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, write_policy

ROOT = Path(__file__).resolve().parents[2]
ALPHA_KEY = "sk-upstream-alpha-5f1e9c3a7d2b4e60"
WRONG_KEY = "sk-upstream-wrong-8a4c2e6f0b1d3957"
DEAD_KEY = "sk-upstream-dead-c7b3a9e1f5d20846"
CLAUDE_KEY = "sk-ant-upstream-claude-6e2a8c4f0d1b"
BAD_POLICY_KEY = "sk-upstream-badpolicy-2d9f7b1e5c3a"
CLIENT_KEY = "sk-client-search-4b8d2f6a0c1e3957"
ADMIN_KEY = "sk-admin-ops-9e3c7a1f5b2d4806"
SECRETS = (ALPHA_KEY, WRONG_KEY, DEAD_KEY, CLAUDE_KEY, BAD_POLICY_KEY, CLIENT_KEY, ADMIN_KEY)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def policy(sim_port: int, dead_port: int, claude_port: int, ledger: Path) -> str:
    return f"""
    version: 1
    providers:
      alpha: {{kind: sim, api_key: {ALPHA_KEY}, sim: {{port: {sim_port}, reply_tokens: 5}}}}
      wrongkey: {{kind: openai, base_url: "http://127.0.0.1:{sim_port}/v1", api_key: {WRONG_KEY}}}
      dead: {{kind: openai, base_url: "http://127.0.0.1:{dead_port}/v1", api_key: {DEAD_KEY}}}
      claude-sim: {{kind: sim, api_key: {CLAUDE_KEY}, sim: {{wire: anthropic, port: {claude_port}}}}}
      claude: {{kind: anthropic, base_url: "http://127.0.0.1:{claude_port}", api_key: {CLAUDE_KEY}}}
    routes:
      chat:
        targets:
          - {{provider: dead, model: m}}
          - {{provider: wrongkey, model: m}}
          - {{provider: alpha, model: m}}
      direct: {{targets: [{{provider: alpha, model: m}}]}}
      claude: {{targets: [{{provider: claude, model: claude-haiku-4-5}}]}}
    auth:
      keys:
        - {{id: search-web, sha256: {digest(CLIENT_KEY)}, team: search, app: web}}
        - {{id: ops-admin, sha256: {digest(ADMIN_KEY)}, team: platform, app: ops, admin: true}}
    metering:
      ledger: {{path: "{ledger}"}}
    """


HELLO = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the gateway answers ready (a process starting up cannot be awaited from outside)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the gateway never became ready")


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} shows {secret[:12]}…"
        assert secret[-12:] not in text, f"{where} shows the tail of {secret[:12]}…"


def test_no_key_shows_anywhere_through_a_battery_of_calls(tmp_path: Path) -> None:
    sim_port, dead_port, claude_port, port = free_port(), free_port(), free_port(), free_port()
    ledger, log_file = tmp_path / "spend.jsonl", tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    path = write_policy(tmp_path, policy(sim_port, dead_port, claude_port, ledger))
    with log_file.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--policy", str(path), "--port", str(port)],
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "RECLOSER_LOG_LEVEL": "DEBUG"},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    seen: list[tuple[str, str]] = []   # (what, everything the client saw)
    client = {"Authorization": f"Bearer {CLIENT_KEY}"}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def call(what: str, method: str, path: str, **kw: object) -> httpx.Response:
        r = httpx.request(method, url + path, timeout=30, **kw)  # type: ignore[arg-type]
        seen.append((what, f"{r.status_code} {dict(r.headers)} {r.text}"))
        return r

    def fault(port: int = sim_port, **spec: object) -> None:
        httpx.post(f"http://127.0.0.1:{port}/_sim/fault", json=spec, timeout=5).raise_for_status()

    try:
        wait_ready(url, proc)
        # Answers, after failing over from a dead upstream and one that refuses its key (401).
        assert call("answer", "POST", "/v1/chat/completions", json=HELLO, headers=client).status_code == 200
        assert call("stream", "POST", "/v1/chat/completions", json={**HELLO, "stream": True},
                    headers=client).status_code == 200
        assert call("embeddings", "POST", "/v1/embeddings", json={"model": "chat", "input": "x"},
                    headers=client).status_code == 200
        # An upstream whose error quotes the key it was sent, handed back to the caller as its fault.
        fault(status=400, echo_key=True)
        r = call("echoed 400", "POST", "/v1/chat/completions", json={**HELLO, "model": "direct"}, headers=client)
        assert r.status_code == 400 and "Key used" in r.text
        fault(status=500, echo_key=True)
        assert call("upstream 500", "POST", "/v1/chat/completions", json=HELLO, headers=client).status_code >= 500
        fault(malformed="html")
        assert call("html 200", "POST", "/v1/chat/completions", json=HELLO, headers=client).status_code >= 500
        fault()
        # Through litellm (kind: anthropic): an answer, then the provider's own 500 and 401.
        claude = {**HELLO, "model": "claude"}
        assert call("litellm answer", "POST", "/v1/chat/completions", json=claude, headers=client).status_code == 200
        fault(claude_port, status=500)
        assert call("litellm 500", "POST", "/v1/chat/completions", json=claude, headers=client).status_code >= 500
        fault(claude_port, status=401)
        assert call("litellm 401", "POST", "/v1/chat/completions", json=claude, headers=client).status_code >= 500
        fault(claude_port)
        # Callers without a key, with a wrong one, with a client key on the admin view.
        assert call("no key", "POST", "/v1/chat/completions", json=HELLO).status_code == 401
        assert call("wrong key", "POST", "/v1/chat/completions", json=HELLO,
                    headers={"Authorization": f"Bearer {CLIENT_KEY}x"}).status_code == 401
        assert call("client on admin", "GET", "/admin/deployments", headers=client).status_code == 403
        assert call("admin view", "GET", "/admin/deployments", headers=admin).status_code == 200
        assert call("models", "GET", "/v1/models", headers=client).status_code == 200
        assert call("metrics", "GET", "/metrics").status_code == 200
        assert call("bad body", "POST", "/v1/chat/completions", content=b"{", headers=client).status_code == 400
        # Reloads: a policy with its key where a list does not belong is refused, the good one taken back.
        good = path.read_text()
        path.write_text(good.replace(f"api_key: {ALPHA_KEY}", f"api_key: [{ALPHA_KEY}]"))
        r = call("bad reload", "POST", "/admin/reload", headers=admin)
        assert r.status_code == 422 and ".yaml:" in r.text
        path.write_text(good)
        assert call("good reload", "POST", "/admin/reload", headers=admin).status_code == 200
        assert call("client reloads", "POST", "/admin/reload", headers=client).status_code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for what, text in seen:
        assert_no_secret(what, text)
    ledger_text = ledger.read_text()
    assert "search-web" in ledger_text            # the client key shows by its id, and only so
    assert_no_secret("the ledger", ledger_text)
    logs = log_file.read_text(errors="replace")
    assert "DEBUG" in logs or logs.strip(), "the gateway logged nothing at DEBUG: the check would be empty"
    assert_no_secret("the gateway's logs", logs)


@pytest.mark.parametrize("line", [
    f"      alpha: {{kind: sim, api_key: [{BAD_POLICY_KEY}]}}",            # a list where a string belongs
    f"      alpha: {{kind: sim, api_key: {BAD_POLICY_KEY}, wieght: 1}}",   # an unknown key beside it
    f'      alpha: {{kind: sim, api_key: "{BAD_POLICY_KEY}}}',              # a quote never closed
    f"      alpha: {{kind: nonsense, api_key: {BAD_POLICY_KEY}}}",         # an unknown kind
])
def test_a_bad_policy_is_refused_without_quoting_its_key(tmp_path: Path, line: str) -> None:
    text = f"version: 1\nproviders:\n  {line.strip()}\nroutes:\n  chat: {{targets: [{{provider: alpha, model: m}}]}}\n"
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for command in (["check", str(path)], ["serve", "--policy", str(path), "--port", str(free_port())]):
        done = subprocess.run([sys.executable, "-m", "gateway", *command], cwd=ROOT, capture_output=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "RECLOSER_LOG_LEVEL": "DEBUG"})
        out = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode != 0 and "bad.yaml:" in out, out
        assert_no_secret("a refused policy's message", out)
