"""The pool benchmark's report (tests/perf/pool_bench.py): one row per mode and load, the unloaded first
tokens per mode, and where the pool's first tokens went (its replicas' queues, their prefill, the rest)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadgen import percentile
from report import machine, render, replace_block

WARM_S = 1.0          # a few requests' time: throughput counts answers after it

HEADER = ["mode", "load", "offered/s", "TTFT p50 ms", "TTFT p99 ms", "pool TTFT p50", "pool TTFT p99",
          "completed/s", "pool / capacity", "slots busy", "spilled", "prefix hits / best", "USD per 1k", "errors"]


@dataclass(slots=True)
class Outcome:
    sent_at: float
    status: int
    ttft_s: float | None
    done_at: float
    provider: str


@dataclass(frozen=True, slots=True)
class Split:
    """Where the pool's first tokens went in one phase, as means over the requests its replicas started."""

    queue_s: float        # waiting in a replica's queue for a place in its batch
    prefill_s: float      # computing the prompt's uncached part
    busy: float           # the replicas' places in use, sampled through the phase (running / places)
    queued: float         # the share of the requests (per request started) that waited for a place


@dataclass
class Row:
    mode: str
    load: str
    offered_rps: float
    outcomes: list[Outcome]
    hit_rate: float
    best_rate: float
    cost_usd: float
    capacity: float
    split: Split | None = None

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]

    def cells(self) -> list[str]:
        ok = self.ok()
        ttfts = [o.ttft_s for o in ok if o.ttft_s is not None]
        local_ttfts = [o.ttft_s for o in ok if o.ttft_s is not None and o.provider != "cloud"]
        # Throughput in the steady part of the phase: answers that ended after the first answers of
        # the phase could have and before the last request was sent.
        start = min(o.sent_at for o in self.outcomes)
        window = (start + WARM_S, max(o.sent_at for o in self.outcomes))
        steady = [o for o in ok if window[0] <= o.done_at <= window[1]]
        span = window[1] - window[0]
        local = [o for o in steady if o.provider != "cloud"]
        spilled = sum(1 for o in ok if o.provider == "cloud")
        share = spilled / len(ok) if ok else float("nan")
        per_k = 1000 * self.cost_usd / len(ok) if ok else float("nan")
        busy = f"{self.split.busy:.0%}" if self.split is not None else "–"
        return [self.mode, self.load, f"{self.offered_rps:.1f}", _ms(ttfts, 50), _ms(ttfts, 99),
                _ms(local_ttfts, 50), _ms(local_ttfts, 99), f"{len(steady) / span:.1f}",
                f"{len(local) / span / self.capacity:.0%}", busy, f"{share:.0%}",
                f"{self.hit_rate:.0%} / {self.best_rate:.0%}", f"{per_k:.3f}",
                _errors([o.status for o in self.outcomes if o.status != 200])]

    def split_line(self) -> str:
        """The pool's mean first token beside its replicas' mean queue wait and prefill (the rest: the
        gateway, the network and the client)."""
        local = [o.ttft_s for o in self.ok() if o.ttft_s is not None and o.provider != "cloud"]
        if self.split is None or not local:
            return f"{self.mode} {self.load}: –"
        mean = sum(local) / len(local)
        rest = mean - self.split.queue_s - self.split.prefill_s
        return (f"{self.mode} {self.load}: pool TTFT mean {mean * 1000:.1f} ms = replica queue "
                f"{self.split.queue_s * 1000:.1f} + prefill {self.split.prefill_s * 1000:.1f} + gateway, network "
                f"and client {rest * 1000:.1f}; {self.split.queued:.1%} queued at a replica; pool TTFT p90 / p95 / "
                f"p98 / p99 {' / '.join(_ms(local, q) for q in (90, 95, 98, 99))} ms")


def _errors(statuses: list[int]) -> str:
    """How many failed, and how (0: cut short or timed out at the client)."""
    if not statuses:
        return "0"
    counts = sorted(Counter(statuses).items())
    return f"{len(statuses)} (" + ", ".join(f"{k or 'cut'}: {n}" for k, n in counts) + ")"


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f}" if values else "–"


def tables(rows: list[Row], unloaded: dict[str, tuple[float, float]]) -> tuple[str, str]:
    """The rows, and each mode's unloaded pool TTFT, as Markdown tables."""
    table = render([HEADER] + [r.cells() for r in rows])
    idle = render([["mode", "unloaded pool TTFT p50 ms", "unloaded pool TTFT p99 ms"]]
                  + [[m, f"{a * 1000:.0f}", f"{b * 1000:.0f}"] for m, (a, b) in unloaded.items()])
    return table, idle


def write_docs(path: Path, table: str, idle: str, capacity: float, mean_prompt: float, best_rate: float,
               load: str) -> None:
    body = (f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}; capacity ≈ {capacity:.1f} requests/s "
            f"(mean prompt {mean_prompt:.0f} tokens, best prefix hit rate {best_rate:.0%}); `uptime` before "
            f"the run: {load}.\n\n{table}\n\n{idle}\n")
    replace_block(path, "pool-bench", body)
