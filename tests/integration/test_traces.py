"""OpenTelemetry traces, received by a real OTLP/HTTP endpoint: a request that failed over is one trace,
a request span under the client's traceparent with a child span per upstream attempt."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.sim import Fault
from tests.conftest import GatewayFactory, free_port
from tests.otlp_receiver import OtlpReceiver, attributes

HELLO = [{"role": "user", "content": "hello"}]
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
ROOT = Path(__file__).resolve().parents[2]

FAILOVER = """
version: 1
providers:
  alpha:
    kind: sim
    api_key: sk-alpha-upstream-secret
    sim: {wire: openai, reply_tokens: 8}
    models: {alpha-model: {input_usd_per_mtok: 3, output_usd_per_mtok: 15}}
  beta:
    kind: sim
    sim: {wire: openai, reply_tokens: 6}
    models: {beta-model: {input_usd_per_mtok: 2, output_usd_per_mtok: 10}}
routes:
  chat:
    retry: {attempts: 1}
    targets:
      - {provider: alpha, model: alpha-model}
      - {provider: beta, model: beta-model, tier: 2}
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def traced(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> OtlpReceiver:
    """The standard variables point the gateway at the receiver; batches leave every 50 ms."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "recloser-test")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    return receiver


def failed_over(start_gateway: GatewayFactory, **headers: str) -> tuple[httpx.Response, object]:
    gw = start_gateway(FAILOVER)
    gw.set_fault("alpha", Fault(status=503))
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "chat", "messages": HELLO},
                   headers={"Authorization": "Bearer k", **headers}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["x-recloser-provider"] == "beta"
    return r, gw


def test_a_request_that_failed_over_is_one_trace_under_the_clients_traceparent(
        start_gateway: GatewayFactory, traced: OtlpReceiver) -> None:
    _, gw = failed_over(start_gateway, traceparent=TRACEPARENT)
    spans = traced.wait_for_spans(3)
    assert len(spans) == 3
    assert all(resource["service.name"] == "recloser-test" for resource, _ in spans)
    assert {span.trace_id.hex() for _, span in spans} == {CLIENT_TRACE}
    request = next(span for _, span in spans if span.kind == Span.SPAN_KIND_SERVER)
    assert request.parent_span_id.hex() == CLIENT_SPAN
    first, second = sorted((span for _, span in spans if span.kind == Span.SPAN_KIND_CLIENT),
                           key=lambda s: s.start_time_unix_nano)
    assert first.parent_span_id == request.span_id and second.parent_span_id == request.span_id

    assert first.status.code == Status.STATUS_CODE_ERROR
    assert "server_error" in first.status.message and "HTTP 503" in first.status.message
    failed = attributes(first.attributes)
    assert failed["recloser.failure_reason"] == "server_error"
    assert failed["error.type"] == "server_error"
    assert failed["gen_ai.provider.name"] == "alpha" and failed["gen_ai.request.model"] == "alpha-model"
    assert failed["http.response.status_code"] == 503

    answered = attributes(second.attributes)
    assert second.status.code != Status.STATUS_CODE_ERROR
    assert answered["gen_ai.operation.name"] == "chat"
    assert answered["gen_ai.provider.name"] == "beta"
    assert answered["gen_ai.response.model"] == "beta-model"
    assert answered["recloser.attempt.role"] == "failover"
    assert answered["recloser.tier"] == 2
    assert answered["gen_ai.usage.output_tokens"] > 0

    whole = attributes(request.attributes)
    assert request.name == "chat chat"
    assert whole["gen_ai.operation.name"] == "chat"
    assert whole["gen_ai.request.model"] == "chat"
    assert whole["gen_ai.provider.name"] == "beta"
    assert whole["gen_ai.response.model"] == "beta-model"
    assert whole["gen_ai.usage.input_tokens"] > 0 and whole["gen_ai.usage.output_tokens"] > 0
    assert whole["recloser.route"] == "chat"
    assert whole["recloser.deployment"] == "beta/beta-model"
    assert whole["recloser.outcome"] == "ok"
    assert whole["recloser.failover"] is True
    assert whole["recloser.attempts"] == 2
    assert whole["recloser.tier"] == 2
    # 2 and 10 $/Mtok: the cost the ledger would show, to the nano-dollar
    expected = (whole["gen_ai.usage.input_tokens"] * 2 + whole["gen_ai.usage.output_tokens"] * 10) / 1e6
    assert whole["recloser.cost_usd"] == pytest.approx(expected)
    assert whole["http.response.status_code"] == 200

    assert not any(b"sk-alpha-upstream-secret" in export.SerializeToString() for export in traced.requests)

    # Each attempt told its upstream its own span as the parent.
    assert gw.sim("alpha").requests[-1].headers["traceparent"] == f"00-{CLIENT_TRACE}-{first.span_id.hex()}-01"
    assert gw.sim("beta").requests[-1].headers["traceparent"] == f"00-{CLIENT_TRACE}-{second.span_id.hex()}-01"


def test_without_a_client_traceparent_the_request_starts_its_own_trace(
        start_gateway: GatewayFactory, traced: OtlpReceiver) -> None:
    failed_over(start_gateway)
    spans = [span for _, span in traced.wait_for_spans(3)]
    assert len({span.trace_id for span in spans}) == 1
    request = next(span for span in spans if span.kind == Span.SPAN_KIND_SERVER)
    assert request.parent_span_id == b""
    assert request.trace_id.hex() != CLIENT_TRACE


def test_spans_go_as_otlp_json_when_the_protocol_says_http_json(
        start_gateway: GatewayFactory, traced: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    failed_over(start_gateway, traceparent=TRACEPARENT)
    spans = [span for _, span in traced.wait_for_spans(3)]
    assert set(traced.content_types) == {"application/json"}
    assert {span.trace_id.hex() for span in spans} == {CLIENT_TRACE}
    request = next(span for span in spans if span.kind == Span.SPAN_KIND_SERVER)
    assert request.parent_span_id.hex() == CLIENT_SPAN
    assert sorted(attributes(s.attributes)["recloser.outcome"] for s in spans if s.kind == Span.SPAN_KIND_CLIENT) \
        == ["ok", "server_error"]


def test_the_policy_block_sends_spans_without_any_variable(start_gateway: GatewayFactory,
                                                           receiver: OtlpReceiver) -> None:
    gw = start_gateway(FAILOVER + f"""
tracing: {{endpoint: "{receiver.endpoint}", service_name: from-policy}}
""")
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "chat", "messages": HELLO},
                   headers={"Authorization": "Bearer k"}, timeout=10)
    assert r.status_code == 200
    gw.stop()   # the last batch is sent on the way out
    spans = receiver.wait_for_spans(2)
    assert {resource["service.name"] for resource, _ in spans} == {"from-policy"}


def test_an_unreachable_collector_loses_spans_never_requests(start_gateway: GatewayFactory,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{free_port()}/v1/traces")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")   # the exporter retries the refused port meanwhile
    gw = start_gateway(FAILOVER)
    with httpx.Client(timeout=5) as client:
        for stream in [False, True] * 10:
            r = client.post(f"{gw.base_url}/chat/completions", headers={"Authorization": "Bearer k"},
                            json={"model": "chat", "messages": HELLO, "stream": stream})
            assert r.status_code == 200, r.text
    gw.stop()   # and shutting down waits a bounded while for a collector that never answers


def test_no_tracing_package_is_imported_when_traces_are_off(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(FAILOVER)
    script = f"""
import sys, httpx
from gateway.policy.load import load_policy
from gateway.serving.embedded import EmbeddedGateway
with EmbeddedGateway(load_policy({str(policy)!r})) as gw:
    r = httpx.post(gw.base_url + "/chat/completions", json={{"model": "chat", "messages": {HELLO!r}}},
                   headers={{"Authorization": "Bearer k", "traceparent": {TRACEPARENT!r}}}, timeout=10)
    assert r.status_code == 200, r.text
print(sorted(m for m in sys.modules if m.startswith(("opentelemetry", "google.protobuf"))))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_stream_cut_midway_and_resumed_elsewhere_shows_the_broken_attempt_in_error(
        start_gateway: GatewayFactory, traced: OtlpReceiver) -> None:
    gw = start_gateway(FAILOVER)
    gw.set_fault("alpha", Fault(cut_after_chunks=2))
    with httpx.stream("POST", f"{gw.base_url}/chat/completions", headers={"Authorization": "Bearer k"}, timeout=10,
                      json={"model": "chat", "messages": HELLO, "stream": True}) as r:
        assert r.status_code == 200
        r.read()
    spans = [span for _, span in traced.wait_for_spans(3)]
    request = next(span for span in spans if span.kind == Span.SPAN_KIND_SERVER)
    broken, resumed = sorted((s for s in spans if s.kind == Span.SPAN_KIND_CLIENT), key=lambda s: s.start_time_unix_nano)
    assert broken.status.code == Status.STATUS_CODE_ERROR
    assert attributes(broken.attributes)["recloser.outcome"] != "ok"
    assert attributes(resumed.attributes)["recloser.attempt.role"] in ("resume", "restart")
    assert resumed.status.code != Status.STATUS_CODE_ERROR
    whole = attributes(request.attributes)
    assert whole["gen_ai.provider.name"] == "beta"
    assert whole["recloser.events"] == ["resumed"]
    assert whole["gen_ai.usage.output_tokens"] > 0 and whole["recloser.cost_usd"] > 0
    # the broken attempt ended when it broke, before the one that took over
    assert request.start_time_unix_nano <= broken.start_time_unix_nano <= broken.end_time_unix_nano \
        <= resumed.start_time_unix_nano <= resumed.end_time_unix_nano <= request.end_time_unix_nano


def test_a_request_held_through_an_outage_says_how_long_it_waited(start_gateway: GatewayFactory,
                                                                   traced: OtlpReceiver) -> None:
    from tests.integration.test_hold import KEYS, OUTAGE_S, policy

    gw = start_gateway(policy(hold_s=30))
    gw.set_fault("alpha", Fault(refuse=True, duration_s=OUTAGE_S))
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "chat", "messages": HELLO},
                   headers={"Authorization": f"Bearer {KEYS['std']}"}, timeout=30)
    assert r.status_code == 200, r.text
    spans = [span for _, span in traced.wait_for_spans(3)]
    request = next(span for span in spans if span.kind == Span.SPAN_KIND_SERVER)
    whole = attributes(request.attributes)
    assert 0 < whole["recloser.hold_s"] <= (request.end_time_unix_nano - request.start_time_unix_nano) / 1e9
    assert whole["recloser.outcome"] == "ok"
    first = min((s for s in spans if s.kind == Span.SPAN_KIND_CLIENT), key=lambda s: s.start_time_unix_nano)
    assert first.status.code == Status.STATUS_CODE_ERROR


def test_a_hedged_request_shows_both_legs_and_the_one_that_lost(start_gateway: GatewayFactory,
                                                                traced: OtlpReceiver) -> None:
    from tests.integration.test_retries_hedging_deadlines import HELLO as ASK, policy

    gw = start_gateway(policy("hedge: {after_s: 0.1, max_percent: 100}", a_delay=2.0))
    r = httpx.post(f"{gw.base_url}/chat/completions", json=ASK, timeout=10)
    assert r.headers["x-recloser-provider"] == "B"
    spans = [span for _, span in traced.wait_for_spans(3)]
    request = next(span for span in spans if span.kind == Span.SPAN_KIND_SERVER)
    legs = {attributes(s.attributes)["gen_ai.provider.name"]: s for s in spans if s.kind == Span.SPAN_KIND_CLIENT}
    assert attributes(request.attributes)["recloser.hedged"] is True
    slow, fast = attributes(legs["A"].attributes), attributes(legs["B"].attributes)
    assert slow["recloser.outcome"] == "hedge_lost" and slow["recloser.attempt.role"] == "primary"
    assert legs["A"].status.code != Status.STATUS_CODE_ERROR      # losing a race is no failure
    assert fast["recloser.outcome"] == "ok" and fast["recloser.attempt.role"] == "hedge"
    assert legs["A"].end_time_unix_nano <= request.end_time_unix_nano


def test_a_request_crossing_to_the_messages_api_sends_its_attempt_as_the_parent(start_gateway: GatewayFactory,
                                                                                traced: OtlpReceiver) -> None:
    gw = start_gateway("""
version: 1
providers:
  claude: {kind: sim, sim: {wire: anthropic}}
routes:
  chat: {targets: [{provider: claude, model: claude-haiku-4-5}]}
""")
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "chat", "messages": HELLO},
                   headers={"traceparent": TRACEPARENT}, timeout=10)
    assert r.status_code == 200, r.text
    spans = [span for _, span in traced.wait_for_spans(2)]
    attempt = next(span for span in spans if span.kind == Span.SPAN_KIND_CLIENT)
    assert gw.sim("claude").requests[-1].headers["traceparent"] == f"00-{CLIENT_TRACE}-{attempt.span_id.hex()}-01"


def test_an_attempt_through_litellm_sends_its_traceparent_too(start_gateway: GatewayFactory,
                                                               traced: OtlpReceiver) -> None:
    gw = start_gateway("""
version: 1
providers:
  viaduct: {kind: sim, via: litellm}
routes:
  chat: {targets: [{provider: viaduct, model: m}]}
""")
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "chat", "messages": HELLO},
                   headers={"traceparent": TRACEPARENT}, timeout=30)
    assert r.status_code == 200, r.text
    attempt = next(s for _, s in traced.wait_for_spans(2) if s.kind == Span.SPAN_KIND_CLIENT)
    assert gw.sim("viaduct").requests[-1].headers["traceparent"] == f"00-{CLIENT_TRACE}-{attempt.span_id.hex()}-01"
