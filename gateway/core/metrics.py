"""Every Prometheus metric the gateway exports, defined once.

Label values come only from the policy (routes, providers, models, teams, apps) and from small
fixed vocabularies (outcome, reason, state): nothing a client sends can create a series. Children
are bound once and cached, because `.labels()` on every call costs more than the increment.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

# LLM calls take from tens of milliseconds to minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40)
GC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
NANOS_NAME = "recloser_cost_nanousd"
NANO = Decimal(10) ** 9
USD_NAME = "recloser_cost_usd"
SAVINGS_NANOS_NAME = "recloser_local_savings_nanousd"
SAVINGS_USD_NAME = "recloser_local_savings_usd"
CLIENT_PAID_NANOS_NAME = "recloser_client_paid_nanousd"
CLIENT_PAID_USD_NAME = "recloser_client_paid_usd"


class _Bound:
    """A metric with its children cached by label values."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[Hashable, Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.metric.labels(*values)
        return child


@dataclass(frozen=True, slots=True)
class PrefixCounts:
    """One pool's prefix counters, bound once."""

    lookups: Any
    hits: Any
    matched_bytes: Any
    prompt_bytes: Any


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = _Bound(Counter(
            "recloser_requests", "Client requests, by how they ended and the API they came in on",
            ["route", "team", "app", "status", "endpoint"], registry=r))
        self.attempts = _Bound(Counter(
            "recloser_upstream_attempts", "Upstream attempts, by outcome",
            ["route", "provider", "model", "outcome"], registry=r))
        self.failovers = _Bound(Counter(
            "recloser_failovers", "Requests moved from one provider to the next, and why",
            ["route", "from_provider", "to_provider", "reason"], registry=r))
        self.retries = _Bound(Counter(
            "recloser_retries", "Retries on the same deployment", ["route", "provider", "model", "reason"],
            registry=r))
        self.retries_denied = _Bound(Counter(
            "recloser_retry_budget_exhausted", "Retries or hedges the retry budget refused", ["route"],
            registry=r))
        self.dropped_features = _Bound(Counter(
            "recloser_dropped_features", "Answers served across wires without a feature the client asked for "
            "(the target has no equivalent), by feature", ["route", "feature"], registry=r))
        self.hedges = _Bound(Counter(
            "recloser_hedges", "Hedged requests, by which leg won", ["route", "outcome"], registry=r))
        self.mid_stream = _Bound(Counter(
            "recloser_mid_stream_failures", "Streams whose upstream failed after bytes reached the client",
            ["route", "provider", "action"], registry=r))
        self.probes = _Bound(Counter(
            "recloser_probes", "The gateway's own probes of ejected deployments, by outcome (ok, or why it failed)",
            ["provider", "model", "outcome"], registry=r))
        self.transitions = _Bound(Counter(
            "recloser_breaker_transitions", "Deployment health changes", ["provider", "model", "from_state",
                                                                           "to_state"], registry=r))
        self.state = _Bound(Gauge(
            "recloser_deployment_state", "1 for the deployment's current state, else 0",
            ["provider", "model", "state"], registry=r, multiprocess_mode="max"))
        self.route_available = _Bound(Gauge(
            "recloser_route_available_targets", "Targets of a route that are not ejected (0: the route cannot answer)",
            ["route"], registry=r, multiprocess_mode="livemin"))
        self.shed = _Bound(Counter(
            "recloser_shed_requests", "Requests refused at once: in-flight limit reached (max_in_flight) or event loop saturated (loop_lag)",
            ["reason"], registry=r))
        self.admission_waits = _Bound(Counter(
            "recloser_admission_waits", "Requests the loop-lag cap refused that waited for room "
            "(limits.loop_lag_wait_ms), by how the wait ended: admitted, or shed when it ran out",
            ["result"], registry=r))
        self.admission_cap = Gauge(
            "recloser_admission_cap", "Requests starting (admitted, answer not begun) the gateway admits now: "
            "limits.max_in_flight, lower while its event loop runs late", registry=r, multiprocess_mode="livesum")
        self.collector_pauses = _Bound(Histogram(
            "recloser_gc_pause_seconds", "Pauses of the garbage collector, by generation (2: a full collection)",
            ["generation"], buckets=GC_BUCKETS, registry=r))
        self.collector_freezes = _Bound(Counter(
            "recloser_gc_freezes", "Survivors of a collection frozen out of later ones while many requests were "
            "in flight (freeze), and what was frozen given back once they fell (thaw)", ["action"], registry=r))
        self.policy_reloads = _Bound(Counter(
            "recloser_policy_reloads", "Policy reloads, by result (ok, unchanged, error)", ["result"], registry=r))
        self.policy_info = _Bound(Gauge(
            "recloser_policy_info", "1 for the policy file serving (by its sha256), 0 for ones served before",
            ["sha256"], registry=r, multiprocess_mode="livemax"))
        self.in_flight = Gauge("recloser_in_flight_requests", "Client requests being served", registry=r,
                               multiprocess_mode="livesum")
        self.duration = _Bound(Histogram(
            "gen_ai_client_operation_duration_seconds", "Duration of client requests (OpenTelemetry GenAI)",
            ["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_provider_name", "route"],
            buckets=LATENCY_BUCKETS, registry=r))
        self.ttft = _Bound(Histogram(
            "recloser_time_to_first_token_seconds", "Time from request to the first streamed token",
            ["route", "provider", "model"], buckets=TTFT_BUCKETS, registry=r))

        # Cost is counted in whole nano-dollars, which a float holds exactly, and exported in USD
        # (`recloser_cost_usd_total`) by `exposition`: the scrape then equals the ledger's exact sum.
        self.cost_nanos = _Bound(Counter(
            NANOS_NAME, "Cost of upstream calls in nano-USD (exported as recloser_cost_usd_total)",
            ["team", "app", "route", "provider", "model"], registry=r))
        self.tokens = _Bound(Counter(
            "recloser_tokens", "Tokens of upstream calls, by the API the request came in on",
            ["team", "app", "route", "provider", "model", "type", "endpoint"], registry=r))
        self.token_usage = _Bound(Histogram(
            "gen_ai_client_token_usage", "Tokens per call (OpenTelemetry GenAI)",
            ["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_provider_name", "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS, registry=r))
        self.unpriced = _Bound(Counter(
            "recloser_unpriced_calls", "Calls to a model with no known price (counted at cost 0)",
            ["provider", "model"], registry=r))
        self.counted_usage = _Bound(Counter(
            "recloser_counted_usage_calls", "Calls whose tokens were counted because the upstream reported none",
            ["provider", "model"], registry=r))
        self.budget_remaining = _Bound(Gauge(
            "recloser_budget_remaining_usd", "What is left of a budget in its current period", ["budget"],
            registry=r, multiprocess_mode="min"))
        self.budget_spent = _Bound(Gauge(
            "recloser_budget_spent_usd", "What a budget's current period has spent", ["budget"], registry=r,
            multiprocess_mode="max"))
        self.budget_resets_at = _Bound(Gauge(
            "recloser_budget_resets_at_seconds", "When a budget's current period ends (Unix time)", ["budget"],
            registry=r, multiprocess_mode="max"))
        self.budget_actions = _Bound(Counter(
            "recloser_budget_actions", "Requests a budget acted on", ["budget", "action"], registry=r))
        self.state_backend_up = Gauge(
            "recloser_state_backend_up", "1 while the shared state store (Redis) answers; 0 while this replica "
            "serves on local state", registry=r, multiprocess_mode="min")
        self.state_syncs = _Bound(Counter(
            "recloser_state_syncs", "Exchanges with the shared state store, by result (ok, unavailable)",
            ["result"], registry=r))
        self.degraded_answers = _Bound(Counter(
            "recloser_degraded_answers", "Answers served by a target of a lower quality tier than the route's best",
            ["route", "team", "tier"], registry=r))
        self.canary_pass_ratio = _Bound(Gauge(
            "recloser_canary_pass_ratio", "Share of canary items the deployment passed in its last run",
            ["provider", "model"], registry=r, multiprocess_mode="max"))
        self.canary_runs = _Bound(Counter(
            "recloser_canary_runs", "Canary items run, by result (pass, fail, error, or skipped: over the daily budget)",
            ["provider", "model", "result"], registry=r))
        self.answer_defects = _Bound(Counter(
            "recloser_answer_defects", "Live answers with a defect the answer checks saw, by kind (wrong_script, "
            "empty, repetition, tool_args_not_json, tool_args_schema, structured_output)",
            ["route", "provider", "model", "defect"], registry=r))
        self.answers_checked = _Bound(Counter(
            "recloser_answers_checked", "Live answers the answer checks read", ["route", "provider", "model"],
            registry=r))
        self.answers_browned_out = _Bound(Gauge(
            "recloser_answers_browned_out", "1 while a deployment is degraded or ejected for defects in its live "
            "answers, else 0", ["provider", "model"], registry=r, multiprocess_mode="max"))
        self.spilled = _Bound(Counter(
            "recloser_spilled_requests", "Requests sent past a pool to the route's next target at once, by why: "
            "full (every endpoint past a hard threshold), wait (the next target answers sooner), objective (the "
            "wait would break the pool's first-token objective)", ["route", "provider", "reason"], registry=r))
        self.pool_shed = _Bound(Counter(
            "recloser_pool_shed_requests", "Requests refused (503) or timed out waiting for a full pool that was "
            "the last target standing, by priority", ["route", "provider", "priority"], registry=r))
        self.pool_load = _Bound(Gauge(
            "recloser_pool_endpoint_load", "A pool endpoint's last reading: requests running and waiting, KV-cache "
            "use (ratio)", ["provider", "endpoint", "measure"], registry=r, multiprocess_mode="max"))
        self.pool_utilisation = _Bound(Gauge(
            "recloser_pool_utilisation_ratio", "How full a pool is, 0 to 1: the mean over its endpoints of each "
            "one's fullest measure (KV-cache use, running / batch size, 1 while requests queue)", ["provider"], registry=r,
            multiprocess_mode="max"))
        self.prefix_lookups = _Bound(Counter(
            "recloser_pool_prefix_lookups", "Requests sent to a pool endpoint, their prompt's prefix looked up in "
            "the gateway's picture of what it holds", ["provider"], registry=r))
        self.prefix_hits = _Bound(Counter(
            "recloser_pool_prefix_hits", "Requests sent to a pool endpoint that held a prefix of their prompt",
            ["provider"], registry=r))
        self.prefix_matched_bytes = _Bound(Counter(
            "recloser_pool_prefix_matched_bytes", "Prompt bytes (whole chunks) the pool endpoint a request went to "
            "held already", ["provider"], registry=r))
        self.prefix_prompt_bytes = _Bound(Counter(
            "recloser_pool_prefix_prompt_bytes", "Prompt bytes (whole chunks) of the requests sent to pool endpoints",
            ["provider"], registry=r))
        self._prefix: dict[str, PrefixCounts] = {}
        self.savings_nanos = _Bound(Counter(
            SAVINGS_NANOS_NAME, "What a pool's tokens would have cost at the route's first frontier target, in "
            "nano-USD (exported as recloser_local_savings_usd_total)", ["route"], registry=r))
        self.client_paid_nanos = _Bound(Counter(
            CLIENT_PAID_NANOS_NAME, "List price of calls answered on the callers' own credentials, which the "
            "organisation did not pay, in nano-USD (exported as recloser_client_paid_usd_total)",
            ["team", "app", "route", "provider", "model"], registry=r))
        self.credential_skips = _Bound(Counter(
            "recloser_client_credential_skips", "Client-credential targets passed over without a call: the request "
            "had no credential for them, or the caller's was refused there and is cooling down", ["route", "provider"],
            registry=r))
        self.held_requests = _Bound(Counter(
            "recloser_held_requests", "Requests no target could answer that a route's hold_s kept waiting, by how "
            "the hold ended: released (answered once a target was back), expired (hold_s ran out), refused (not "
            "held: sheddable, or the line full), cancelled (the client left)", ["route", "outcome"], registry=r))
        self.held = _Bound(Gauge(
            "recloser_held_requests_waiting", "Requests held now, waiting for a target of their route to come back",
            ["route"], registry=r, multiprocess_mode="livesum"))
        self.ledger_records = _Bound(Counter(
            "recloser_ledger_records", "Spend ledger records written, by kind", ["kind"], registry=r))

    def pool_prefix(self, provider: str) -> PrefixCounts:
        counts = self._prefix.get(provider)
        if counts is None:
            counts = self._prefix[provider] = PrefixCounts(
                self.prefix_lookups(provider), self.prefix_hits(provider), self.prefix_matched_bytes(provider),
                self.prefix_prompt_bytes(provider))
        return counts

    def forget_route(self, route: str) -> None:
        """A route a reloaded policy dropped: its series go (in this process; see multiprocess mode)."""
        if (route,) in self.route_available.children:
            del self.route_available.children[(route,)]
            self.route_available.metric.remove(route)

    def set_state(self, provider: str, model: str, state: Enum) -> None:
        """One series per state of the breaker's vocabulary: 1 for the current state, 0 for the rest."""
        for s in type(state):
            self.state(provider, model, s.value).set(1 if s is state else 0)


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The scrape: this process's registry, or every worker's when running several."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(_InUsd(registry)), CONTENT_TYPE_LATEST


_IN_USD = {NANOS_NAME: USD_NAME, SAVINGS_NANOS_NAME: SAVINGS_USD_NAME, CLIENT_PAID_NANOS_NAME: CLIENT_PAID_USD_NAME}
_USD_HELP = {USD_NAME: "Cost of upstream calls in US dollars",
             CLIENT_PAID_USD_NAME: "List price of calls answered on the callers' own credentials (a subscription, "
                                   "a personal key), which the organisation did not pay, in US dollars",
             SAVINGS_USD_NAME: "What the tokens local pools served would have cost at each route's first "
                               "frontier target, in US dollars"}


class _InUsd:
    """A registry view in which the nano-dollar counter reads as `recloser_cost_usd_total` in USD."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            usd_name = _IN_USD.get(family.name)
            if usd_name is None:
                yield family
                continue
            usd = Metric(usd_name, _USD_HELP[usd_name], "counter")
            for sample in family.samples:
                name = sample.name.replace(family.name, usd_name)
                value = sample.value if name.endswith("_created") else float(Decimal(int(sample.value)) / NANO)
                usd.samples.append(sample._replace(name=name, value=value))
            yield usd
