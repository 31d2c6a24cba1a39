"""One structured line per request at info level: ids, route, provider, status, latency, attempts and
cost; never a key or a prompt; and nothing built at all when the level is above info."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.core import logs
from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import UPSTREAM_KEY

PROMPT = "the secret plans for the quarterly offsite"


@pytest.fixture
def logging_as() -> Iterator[Any]:
    """Configures the process's logging for one test, and puts it back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def configure(level_name: str, fmt: str) -> None:
        logs.configure(level_name, fmt)

    yield configure
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def chat(gw: EmbeddedGateway, stream: bool = False) -> httpx.Response:
    return httpx.post(gw.base_url + "/chat/completions", timeout=10, headers={"Authorization": "Bearer sk-client-key"},
                      json={"model": "chat", "stream": stream, "messages": [{"role": "user", "content": PROMPT}]})


def request_lines(err: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, filter(None, err.splitlines())) if line.get("logger") == "recloser.access"]


def test_each_request_logs_one_json_line_with_what_ops_need(two_sims: EmbeddedGateway, logging_as: Any,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    logging_as("info", "json")
    two_sims.set_fault("alpha", Fault(status=503))
    answered = chat(two_sims)
    streamed = chat(two_sims, stream=True)
    two_sims.run(two_sims.context.meter.drain())
    lines = {line["request_id"]: line for line in request_lines(capsys.readouterr().err)}
    first = lines[answered.headers["x-request-id"]]
    assert first["level"] == "info" and first["message"] == "request"
    assert (first["route"], first["provider"], first["status"], first["endpoint"]) == ("chat", "beta", 200, "chat")
    assert first["attempts"] == int(answered.headers["x-recloser-attempts"]) >= 2 and first["fallback"] is True
    assert first["latency_ms"] > 0 and float(first["cost_usd"]) >= 0 and first["team"] == "default"
    assert lines[streamed.headers["x-request-id"]]["stream"] is True
    assert len(lines) == 2, "one line per request"


def test_a_request_refused_before_any_upstream_is_logged_too(two_sims: EmbeddedGateway, logging_as: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    logging_as("info", "json")
    r = httpx.post(two_sims.base_url + "/chat/completions", json={"model": "nope", "messages": []}, timeout=10)
    line = request_lines(capsys.readouterr().err)[-1]
    assert (line["request_id"], line["status"], line["attempts"]) == (r.headers["x-request-id"], r.status_code, 0)


def test_the_log_never_carries_a_key_or_a_prompt(two_sims: EmbeddedGateway, logging_as: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    logging_as("debug", "json")
    chat(two_sims)
    chat(two_sims, stream=True)
    two_sims.set_fault("alpha", Fault(status=401))
    chat(two_sims)
    two_sims.run(two_sims.context.meter.drain())
    err = capsys.readouterr().err
    assert request_lines(err)
    for secret in (UPSTREAM_KEY, "sk-client-key", PROMPT, "quarterly"):
        assert secret not in err


def test_text_format_writes_the_fields_as_pairs(two_sims: EmbeddedGateway, logging_as: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    logging_as("info", "text")
    r = chat(two_sims)
    two_sims.run(two_sims.context.meter.drain())
    line = next(line for line in capsys.readouterr().err.splitlines() if "recloser.access" in line)
    assert f"request_id={r.headers['x-request-id']}" in line and "route=chat" in line and "status=200" in line


def test_above_info_a_request_builds_no_log_line_at_all(two_sims: EmbeddedGateway, logging_as: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []
    monkeypatch.setattr(logs.ACCESS, "info", lambda *a, **kw: built.append(kw))
    logging_as("warning", "json")
    for _ in range(5):
        assert chat(two_sims).status_code == 200
    two_sims.run(two_sims.context.meter.drain())
    assert built == []
    logging_as("info", "json")
    chat(two_sims)
    two_sims.run(two_sims.context.meter.drain())
    assert len(built) == 1
