"""A gateway whose Redis is not there from the start: it serves on local state, says so once, and its
Redis password appears nowhere."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory, free_port

PASSWORD = "hunter2-redis-secret"


def test_a_gateway_starts_and_serves_without_its_redis_and_never_shows_the_password(
        start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()   # nothing listens there
    with caplog.at_level(logging.INFO):
        gw = start_gateway(f"""
            version: 1
            state: {{redis_url: "redis://:{PASSWORD}@127.0.0.1:{port}/0", timeout_ms: 50}}
            providers:
              up: {{kind: sim}}
            routes:
              chat: {{targets: [{{provider: up, model: m}}]}}
            rate_limits:
              - {{name: roomy, team: default, rpm: 1000}}
            """)
        c = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
        for _ in range(5):
            raw = c.chat.completions.with_raw_response.create(model="chat", messages=[{"role": "user", "content": "hi"}])
            assert raw.http_response.status_code == 200
            assert raw.headers["x-ratelimit-limit-requests"] == "1000"   # counted locally meanwhile
        scrape = httpx.get(gw.url + "/metrics").text
        admin = httpx.get(gw.url + "/admin/deployments").text
    assert "recloser_state_backend_up 0.0" in scrape
    unreachable = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1 and f"127.0.0.1:{port}" in unreachable[0]
    for text in (caplog.text, scrape, admin):
        assert PASSWORD not in text
