"""The benchmark's own pieces work: percentiles, the table, /proc readings, the fake upstream, the load
generator. No timing is asserted here; the numbers are the benchmark's to print."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_upstream import serve  # noqa: E402
from loadgen import Pool, build_request, closed_loop, open_loop, percentile  # noqa: E402
from procs import cpu_seconds, open_fds, status_kb  # noqa: E402

from failover_bench import PATHS, Phase, failover_policy, path_policy, phase, split_at  # noqa: E402
from report import render  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 50) != percentile([], 50)  # NaN for nothing measured


def test_render_pads_a_markdown_table() -> None:
    table = render([["measure", "a"], ["x", "1.00"], ["longer name", "2"]]).splitlines()
    assert table[0] == "| measure     | a    |" and table[1] == "| ----------- | ---- |"
    assert len({len(line) for line in table}) == 1


def test_proc_readings_of_this_process() -> None:
    pid = os.getpid()
    assert cpu_seconds(pid) > 0 and status_kb(pid, "VmRSS") > 1000 and open_fds(pid) >= 3


async def test_the_fake_upstream_answers_whole_and_streamed_through_the_load_generator() -> None:
    port = free_port()
    listening = asyncio.Event()
    server = asyncio.create_task(serve(port, listening))
    await listening.wait()
    try:
        pool = Pool("127.0.0.1", port)
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        [whole] = await open_loop(pool, build_request("127.0.0.1", port, "/v1/chat/completions", chat), 10, 0.1)
        assert whole.status == 200
        streams = await closed_loop(pool, build_request("127.0.0.1", port, "/v1/chat/completions",
                                                        {**chat, "stream": True}), 2, 0.2)
        assert streams and all(r.status == 200 and r.ttft_s is not None for r in streams)
        pool.close()
    finally:
        server.cancel()


def test_the_fake_upstream_stream_is_twenty_chunks_and_done() -> None:
    from fake_upstream import STREAM, STREAM_USAGE

    events = [e for e in STREAM.split(b"\r\n\r\n", 1)[1].split(b"\n\n") if e.startswith(b"data: {")]
    contents = [orjson.loads(e[6:])["choices"][0]["delta"].get("content") for e in events]
    assert contents.count("hello ") == 20 and b"data: [DONE]" in STREAM
    assert b'"usage"' in STREAM_USAGE and b'"usage"' not in STREAM


async def test_the_fake_upstream_speaks_the_messages_api_as_the_anthropic_sdk_reads_it() -> None:
    import anthropic

    port = free_port()
    listening = asyncio.Event()
    server = asyncio.create_task(serve(port, listening))
    await listening.wait()
    try:
        async with anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{port}", api_key="k", max_retries=0) as c:
            ask = {"model": "claude-fake", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
            whole = await c.messages.create(**ask)  # type: ignore[call-overload]
            async with c.messages.stream(**ask) as s:
                pieces = [t async for t in s.text_stream]
                streamed = await s.get_final_message()
        assert whole.content[0].text == "hello " * 20 and whole.stop_reason == "end_turn"
        assert pieces == ["hello "] * 20 and streamed.usage.output_tokens == 20
    finally:
        server.cancel()


async def test_the_fake_upstream_takes_spans_as_a_collector_does() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    port = free_port()
    listening = asyncio.Event()
    server = asyncio.create_task(serve(port, listening))
    await listening.wait()
    try:
        kept = InMemorySpanExporter()
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(kept))
        provider.get_tracer("bench").start_span("chat chat").end()
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=5)
        result = await asyncio.to_thread(exporter.export, kept.get_finished_spans())
        exporter.shutdown()
        assert result is SpanExportResult.SUCCESS
    finally:
        server.cancel()


def test_the_policies_the_failover_run_writes_are_valid(tmp_path: Path) -> None:
    from gateway.policy.load import load_policy

    for path in PATHS:
        (tmp_path / "p.yaml").write_text(path_policy(path, 9001, 9002))
        doc = load_policy(tmp_path / "p.yaml").document
        assert list(doc.routes["chat"].targets)[0].provider == "up"
    (tmp_path / "f.yaml").write_text(failover_policy("anthropic via litellm", 9001, 9002))
    assert [t.provider for t in load_policy(tmp_path / "f.yaml").document.routes["chat"].targets] == ["primary", "secondary"]


def test_an_open_loop_splits_at_the_outage_and_each_side_is_summed() -> None:
    from loadgen import Result

    results = [Result(200, 0.001 * (i + 1), None) for i in range(10)] + [Result(503, 0.0005, None)] * 10
    before, after = split_at(results, rate=10.0, cut_s=1.0)
    assert (len(before), len(after)) == (10, 10)
    assert phase(before) == Phase(sent=10, ok=10, shed=0, p50_s=0.005, p99_s=0.010)
    assert phase(after).success == 0.0 and phase(after).shed == 10
