"""The long-streams benchmark's rows: what a run measured, as table cells, and the gateway's metrics it reads."""

from __future__ import annotations

import urllib.request
from collections import Counter
from dataclasses import dataclass

from loadgen import percentile
from long_streams_wire import Streamed, Tally


# --- a run ---------------------------------------------------------------------------------------

HEADER = ["path", "streams", "completed", "TTFT p50 / p99", "chunk delay p50 / p99", "RSS per stream",
          "growth per chunk", "CPU per chunk (held: per request)", "CPU per chunk while open", "full collections / pauses > 20 ms (while all open)",
          "breaker transitions", "shed"]


@dataclass
class Run:
    path: str
    streams: int
    records: list[Streamed]
    tally: Tally
    window: tuple[float, float]        # when every stream was open
    rss_per_stream_kb: float | None = None
    growth_per_chunk_b: float | None = None
    cpu_per_chunk_us: float | None = None
    relay_us: float | None = None      # CPU per chunk while every stream was open (relaying only)
    full_collections: int | None = None
    long_pauses: int | None = None
    long_pauses_open: int | None = None   # … while every stream was open
    transitions: int | None = None
    shed: int | None = None

    held_s: float = 0.0                # held requests: how long each was to be held

    def why_not(self) -> str:
        """How the streams that did not complete ended: status, error, or cut off mid-stream."""
        ends = Counter(f"{r.status or r.error or 'no answer'}{' after its first chunk' if r.first_at else ''}"
                       for r in self.records if not r.done)
        return ", ".join(f"{n} {why}" for why, n in ends.most_common()) or "none"

    def cells(self) -> list[str]:
        if self.held_s:    # held for their whole hold, then answered with its error event
            done = sum(1 for r in self.records if r.status == 200 and r.ended_at is not None
                       and r.ended_at - r.scheduled >= 0.9 * self.held_s)
        else:
            done = sum(1 for r in self.records if r.done)
        ttfts = [r.first_at - r.scheduled for r in self.records if r.first_at is not None]
        delays = [d for at, d in self.tally.delays if self.window[0] <= at <= self.window[1]]

        def ms(values: list[float], p: float) -> str:
            return f"{1000 * percentile(values, p) + 0.0:.0f}".replace("-0", "0") if values else "–"

        def opt(value: float | int | None, fmt: str) -> str:
            return "–" if value is None else fmt.format(value)

        timing = ["–", "–"] if self.held_s else [f"{ms(ttfts, 50)} / {ms(ttfts, 99)} ms",
                                                  f"{ms(delays, 50)} / {ms(delays, 99)} ms"]
        return [self.path, str(self.streams), f"{100 * done / max(1, self.streams):.1f} %", *timing,
                opt(self.rss_per_stream_kb, "{:.1f} KB"), opt(self.growth_per_chunk_b, "{:.0f} B"),
                opt(self.cpu_per_chunk_us, "{:.0f} µs"), opt(self.relay_us, "{:.0f} µs"),
                "–" if self.full_collections is None else f"{self.full_collections} / {self.long_pauses}"
                + ("" if self.long_pauses_open is None else f" ({self.long_pauses_open})"),
                opt(self.transitions, "{}"), opt(self.shed, "{}")]


def collector(before: str, after: str) -> tuple[float, float]:
    """Full collections, and collections that paused the process over 20 ms, between two scrapes."""
    full = metric_sum(after, "recloser_gc_pause_seconds_count", 'generation="2"') \
        - metric_sum(before, "recloser_gc_pause_seconds_count", 'generation="2"')
    total = metric_sum(after, "recloser_gc_pause_seconds_count") - metric_sum(before, "recloser_gc_pause_seconds_count")
    short = metric_sum(after, "recloser_gc_pause_seconds_bucket", 'le="0.02"') \
        - metric_sum(before, "recloser_gc_pause_seconds_bucket", 'le="0.02"')
    return full, total - short


def metric_sum(text: str, name: str, label: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:  # noqa: S310 (loopback)
        return r.read().decode()  # type: ignore[no-any-return]
