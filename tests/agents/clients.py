"""The released agent CLIs, installed from the lock file beside this module, and driven as
gateway/commands/agent_clis.py drives them (a scratch home each, their own retries off, loopback only)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gateway.commands import agent_clis
from gateway.commands.agent_clis import (AgentCLI as AgentCLI, Turn as Turn, claude_code_env as claude_code_env,
                                         codex_config as codex_config)

AGENTS_DIR = Path(__file__).resolve().parent
BIN_DIR = AGENTS_DIR / "node_modules" / ".bin"
CODEX_VERSION = "0.169.0"
CLAUDE_CODE_VERSION = "2.1.328"
INSTALL_TIMEOUT_S = 900.0          # a cold npm cache downloads some 250 MB of native binaries
CLIENT_KEY = "sk-recloser-agent-tests"


def install_needed(agents_dir: Path = AGENTS_DIR) -> bool:
    """node_modules is missing, or older than the lock file (npm writes its own copy of the lock on install)."""
    installed = agents_dir / "node_modules" / ".package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < (agents_dir / "package-lock.json").stat().st_mtime


def install(agents_dir: Path = AGENTS_DIR) -> None:
    """`npm ci` from the lock file: exactly the pinned versions. npm 11 runs no install scripts unless
    approved, and neither CLI needs one (each package's bin is the binary or a node wrapper)."""
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=agents_dir, capture_output=True,
                          text=True, timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"npm ci failed ({done.returncode}) in {agents_dir}:\n{done.stdout}\n{done.stderr}")
    installed = agents_dir / "node_modules" / ".package-lock.json"
    installed.touch()  # npm ci may keep the lock's own time; the next run must see an install newer than it


class Codex(agent_clis.Codex):
    version = CODEX_VERSION

    def __init__(self, home: Path, work: Path, base_url: str, route: str, key: str = CLIENT_KEY,
                 gateway_key: str | None = None) -> None:
        super().__init__(BIN_DIR, home, work, base_url, route, key, gateway_key)


class ClaudeCode(agent_clis.ClaudeCode):
    version = CLAUDE_CODE_VERSION

    def __init__(self, home: Path, work: Path, gateway_url: str, route: str, key: str = CLIENT_KEY,
                 oauth_token: str | None = None) -> None:
        super().__init__(BIN_DIR, home, work, gateway_url, route, key, oauth_token)
