"""The released agent CLIs (Claude Code, Codex) driven non-interactively through a gateway, one turn a
run: the tests' agent matrix and `recloser drill --agents` both drive them through this module.

Each CLI gets a home of its own in a scratch directory (its sessions, settings and caches land there,
never in the user's), a clean environment (no keys or proxies of the machine leak in), its own
retries off (what a session survives is the gateway's doing alone), and no traffic but to the
gateway on loopback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

TURN_TIMEOUT_S = 90.0
# A window for a model name Claude Code does not know (every route name); without it, it assumes 1M
# tokens and says so on every run.
CONTEXT_TOKENS = 200_000
CLIS = ("claude", "codex")


def find_clis(given: Path | None, beside: Path) -> Path | None:
    """The folder holding both CLIs' launchers: `given`, else the agent tests' install under `beside`
    (tests/agents/node_modules/.bin), else the folder on the PATH that has both; None when none has."""
    candidates = [given] if given is not None else [beside / "tests" / "agents" / "node_modules" / ".bin"]
    if given is None:
        found = {shutil.which(name) for name in CLIS}
        if None not in found and len({Path(str(p)).parent for p in found}) == 1:
            candidates.append(Path(str(found.pop())).parent)
    for folder in candidates:
        if folder is not None and all((folder / name).exists() for name in CLIS):
            return folder
    return None


@dataclass(frozen=True)
class Turn:
    """One run of a CLI: what it was asked, its exit code and what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode}\n--- stdout ---\n{self.stdout}\n"
                f"--- stderr ---\n{self.stderr}")


def run_turn(argv: Sequence[str], cwd: Path, env: dict[str, str], timeout_s: float = TURN_TIMEOUT_S) -> Turn:
    """Run one CLI turn to its end, bounded; a run past the bound is a failed turn that says so."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        def text(b: bytes | str | None) -> str:
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return Turn(tuple(argv), -1, text(exc.stdout), text(exc.stderr) + f"\n[timed out after {timeout_s} s]")
    return Turn(tuple(argv), done.returncode, done.stdout, done.stderr)


def base_env(home: Path) -> dict[str, str]:
    """What every CLI run inherits: a PATH (node, bash and the commands the agent runs), a scratch HOME."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "NO_COLOR": "1", "TERM": "dumb", "TMPDIR": str(home / "tmp")}


class AgentCLI(Protocol):
    name: str

    def first(self, prompt: str) -> Turn:
        """A new session's first turn."""
        ...

    def next(self, prompt: str) -> Turn:
        """The next turn of the latest session in the work directory."""
        ...


def codex_config(base_url: str, route: str, env_key: str = "RECLOSER_API_KEY", gateway_key: str | None = None) -> str:
    """CODEX_HOME/config.toml for a gateway route: the Responses wire, retries and telemetry off. With
    `gateway_key`, the key in `env_key` is the developer's own OpenAI key and the gateway key goes in
    an `x-recloser-key` header (`http_headers`)."""
    headers = f'http_headers = {{ "x-recloser-key" = "{gateway_key}" }}\n' if gateway_key else ""
    return f"""\
model = "{route}"
model_provider = "recloser"
model_context_window = {CONTEXT_TOKENS}
check_for_update_on_startup = false

[model_providers.recloser]
name = "Recloser"
base_url = "{base_url}"
env_key = "{env_key}"
wire_api = "responses"
{headers}# The gateway retries and fails over; a client retry would hide what it did not rescue.
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
trace_exporter = "none"
metrics_exporter = "none"

# The plugin marketplace is synced from api.github.com and chatgpt.com at start-up: the only lookups
# Codex makes off loopback with the settings above.
[features]
plugins = false
"""


class Codex:
    """`codex exec`, no approvals and no sandbox (the scratch work directory is the agent's to use)."""

    name = "codex"

    def __init__(self, bin_dir: Path, home: Path, work: Path, base_url: str, route: str, key: str,
                 gateway_key: str | None = None, timeout_s: float = TURN_TIMEOUT_S) -> None:
        """`gateway_key`: `key` is the developer's own OpenAI key, and this one names the caller."""
        self.bin_dir, self.timeout_s = bin_dir, timeout_s
        self.work = work
        codex_home = home / "codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        (home / "tmp").mkdir(exist_ok=True)
        (codex_home / "config.toml").write_text(codex_config(base_url, route, gateway_key=gateway_key),
                                                encoding="utf-8")
        self.env = {**base_env(home), "CODEX_HOME": str(codex_home), "RECLOSER_API_KEY": key}

    def _exec(self, *args: str) -> Turn:
        return run_turn([str(self.bin_dir / "codex"), "exec", *args], self.work, self.env, self.timeout_s)

    def first(self, prompt: str) -> Turn:
        return self._exec("--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", prompt)

    def next(self, prompt: str) -> Turn:
        return self._exec("resume", "--last", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
                          prompt)


def claude_code_env(home: Path, gateway_url: str, route: str, key: str) -> dict[str, str]:
    """Claude Code on a gateway route: every model slot is the route, nothing but the API on the network."""
    return {**base_env(home),
            "ANTHROPIC_BASE_URL": gateway_url, "ANTHROPIC_API_KEY": key,
            "ANTHROPIC_MODEL": route, "ANTHROPIC_DEFAULT_HAIKU_MODEL": route, "ANTHROPIC_SMALL_FAST_MODEL": route,
            "ANTHROPIC_DEFAULT_SONNET_MODEL": route, "ANTHROPIC_DEFAULT_OPUS_MODEL": route,
            "CLAUDE_CODE_SUBAGENT_MODEL": route,
            "CLAUDE_CODE_MAX_CONTEXT_TOKENS": str(CONTEXT_TOKENS),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0"}


class ClaudeCode:
    """`claude -p`, the Bash tool allowed without asking (`--dangerously-skip-permissions` is refused as root)."""

    name = "claude-code"

    def __init__(self, bin_dir: Path, home: Path, work: Path, gateway_url: str, route: str, key: str,
                 oauth_token: str | None = None, timeout_s: float = TURN_TIMEOUT_S) -> None:
        """`oauth_token`: logged in with a subscription (CLAUDE_CODE_OAUTH_TOKEN, sent as a bearer with its
        beta flag), naming the caller by `key` in x-recloser-key (ANTHROPIC_CUSTOM_HEADERS)."""
        self.bin_dir, self.timeout_s = bin_dir, timeout_s
        self.work = work
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = claude_code_env(home, gateway_url, route, key)
        if oauth_token is not None:
            del self.env["ANTHROPIC_API_KEY"]
            self.env |= {"CLAUDE_CODE_OAUTH_TOKEN": oauth_token, "ANTHROPIC_CUSTOM_HEADERS": f"x-recloser-key: {key}"}

    def _print(self, *args: str, prompt: str) -> Turn:
        # `--` ends --allowedTools' list, which would otherwise take the prompt as a tool name.
        return run_turn([str(self.bin_dir / "claude"), "-p", *args, "--allowedTools", "Bash", "--", prompt],
                        self.work, self.env, self.timeout_s)

    def first(self, prompt: str) -> Turn:
        return self._print(prompt=prompt)

    def next(self, prompt: str) -> Turn:
        return self._print("--continue", prompt=prompt)
