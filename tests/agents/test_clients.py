"""The agent CLIs the matrix drives are the pinned releases, installed again when the lock file changes."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.agents.clients import (AGENTS_DIR, CLAUDE_CODE_VERSION, CLIENT_KEY, CODEX_VERSION, claude_code_env, codex_config,
                                  install_needed)

pytestmark = pytest.mark.timeout(900)   # the first test may install the CLIs (see test_outages)


def version_of(bin_dir: Path, name: str, home: Path) -> str:
    # A scratch HOME: even `--version` makes the CLI's state directory there.
    done = subprocess.run([str(bin_dir / name), "--version"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", ""), "HOME": str(home)})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_pinned_releases_are_installed_and_run(agent_clients: Path, tmp_path: Path) -> None:
    assert version_of(agent_clients, "codex", tmp_path) == f"codex-cli {CODEX_VERSION}"
    assert version_of(agent_clients, "claude", tmp_path) == f"{CLAUDE_CODE_VERSION} (Claude Code)"


def test_the_lock_file_pins_exactly_the_versions_the_tests_expect() -> None:
    lock = json.loads((AGENTS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@openai/codex"]["version"] == CODEX_VERSION
    assert lock["packages"]["node_modules/@anthropic-ai/claude-code"]["version"] == CLAUDE_CODE_VERSION


def test_an_install_older_than_the_lock_file_or_missing_is_done_again(tmp_path: Path) -> None:
    lock = tmp_path / "package-lock.json"
    lock.write_text("{}")
    assert install_needed(tmp_path)                       # no node_modules at all
    installed = tmp_path / "node_modules" / ".package-lock.json"
    installed.parent.mkdir()
    installed.write_text("{}")
    os.utime(lock, (1_000, 1_000))
    os.utime(installed, (2_000, 2_000))
    assert not install_needed(tmp_path)
    os.utime(lock, (3_000, 3_000))                        # the lock changed after the install
    assert install_needed(tmp_path)


def test_codex_is_configured_for_the_responses_wire_with_its_own_retries_telemetry_and_plugin_sync_off() -> None:
    config = tomllib.loads(codex_config("http://127.0.0.1:9/v1", "agent"))
    provider = config["model_providers"][config["model_provider"]]
    assert config["model"] == "agent"
    assert (provider["base_url"], provider["wire_api"]) == ("http://127.0.0.1:9/v1", "responses")
    assert provider["request_max_retries"] == provider["stream_max_retries"] == 0
    assert config["analytics"]["enabled"] is False and config["feedback"]["enabled"] is False
    assert {config["otel"][k] for k in ("exporter", "trace_exporter", "metrics_exporter")} == {"none"}
    assert config["features"]["plugins"] is False


def test_claude_code_gets_the_route_in_every_model_slot_and_nothing_nonessential(tmp_path: Path) -> None:
    env = claude_code_env(tmp_path, "http://127.0.0.1:9", "agent", CLIENT_KEY)
    assert env["HOME"] == str(tmp_path) and env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert {env[k] for k in ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL")} == {"agent"}
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"]
    assert not any(k.startswith(("OPENAI_", "HTTP_PROXY", "HTTPS_PROXY")) for k in env)
