"""Which trace settings apply: the policy's `tracing:` block where it names one, the standard OTEL_*
variables for the rest; traces are on only when an endpoint is known."""

from __future__ import annotations

import textwrap

import pytest

from gateway.flow.tracing import NO_TRACER, TraceSettings, TraceSettingsError, trace_settings
from gateway.serving.traces import open_tracer, where
from gateway.policy.load import PolicyError, parse_policy
from gateway.policy.tracing import Tracing
from tests.unit.test_attempt_journal_hooks import POLICY as JOURNAL_POLICY

TRACES = "http://collector:4318/v1/traces"


def test_without_an_endpoint_traces_are_off() -> None:
    assert trace_settings(None, {}) is None
    assert trace_settings(Tracing(service_name="gw"), {"OTEL_SERVICE_NAME": "gw"}) is None


def test_the_traces_endpoint_variable_turns_them_on_with_the_standard_defaults() -> None:
    assert trace_settings(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": TRACES}) == \
        TraceSettings(TRACES, "http/protobuf", "recloser", "parentbased_always_on", 1.0)


def test_the_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_is_taken_as_given() -> None:
    assert trace_settings(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}).endpoint == TRACES  # type: ignore[union-attr]
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/x"}
    assert trace_settings(None, both).endpoint == "http://c/x"  # type: ignore[union-attr]


def test_the_variables_name_protocol_service_and_sampler() -> None:
    s = trace_settings(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": TRACES, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                              "OTEL_SERVICE_NAME": "edge", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                              "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert s == TraceSettings(TRACES, "http/json", "edge", "parentbased_traceidratio", 0.25)


def test_the_traces_protocol_variable_wins_over_the_general_one() -> None:
    s = trace_settings(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": TRACES, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                              "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"})
    assert s is not None and s.protocol == "http/protobuf"


def test_the_policy_block_wins_where_it_names_a_setting_and_the_variables_fill_the_rest() -> None:
    policy = Tracing(endpoint="https://traces.example/v1/traces", sampler="traceidratio", sampler_arg=0.1)
    s = trace_settings(policy, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": TRACES, "OTEL_SERVICE_NAME": "edge",
                                "OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "0.9"})
    assert s == TraceSettings("https://traces.example/v1/traces", "http/protobuf", "edge", "traceidratio", 0.1)


@pytest.mark.parametrize("off", [{"OTEL_SDK_DISABLED": "true"}, {"OTEL_TRACES_EXPORTER": "none"}])
def test_the_standard_switches_turn_traces_off(off: dict[str, str]) -> None:
    assert trace_settings(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": TRACES, **off}) is None


def test_a_policy_that_disables_traces_wins_over_the_variables() -> None:
    assert trace_settings(Tracing(enabled=False), {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": TRACES}) is None


@pytest.mark.parametrize("env, words", [
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "'grpc' is not supported"),
    ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes'"),
    ({"OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG='half'"),
    ({"OTEL_TRACES_SAMPLER_ARG": "2"}, "between 0 and 1"),
])
def test_a_variable_the_gateway_cannot_honour_is_named(env: dict[str, str], words: str) -> None:
    with pytest.raises(TraceSettingsError, match=words):
        trace_settings(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": TRACES, **env})


def test_a_bad_variable_leaves_traces_off_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    assert open_tracer(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": TRACES, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) \
        is NO_TRACER
    assert "traces are off: OTLP protocol 'grpc' is not supported" in caplog.text


def test_no_endpoint_opens_the_tracer_that_does_nothing() -> None:
    assert open_tracer(None, {}) is NO_TRACER


POLICY = JOURNAL_POLICY + """
tracing:
  endpoint: %s
"""


@pytest.mark.parametrize("endpoint, reason", [
    ("collector:4318", "endpoint must be an http:// or https:// URL"),
    ("http://c:4318/v1/traces\n  sampler: sometimes", "sampler"),
])
def test_a_bad_tracing_block_is_refused_with_file_line_and_reason(endpoint: str, reason: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(textwrap.dedent(POLICY % endpoint).lstrip("\n"), "p.yaml", {})
    assert "p.yaml:" in str(refused.value) and "tracing" in str(refused.value)
    assert reason in str(refused.value)


def test_the_log_names_the_collector_without_the_credentials_its_url_carries(caplog: pytest.LogCaptureFixture) -> None:
    assert where("https://tenant:s3cret-token@collector.example:4318/v1/traces") == \
        "https://collector.example:4318/v1/traces"
    caplog.set_level("INFO", logger="recloser.tracing")
    tracer = open_tracer(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://u:s3cret-token@127.0.0.1:9/v1/traces"})
    try:
        assert "traces go to http://127.0.0.1:9/v1/traces" in caplog.text
        assert "s3cret-token" not in caplog.text
    finally:
        import asyncio
        asyncio.run(tracer.close())
