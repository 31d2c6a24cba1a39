"""The routing policy file, version 1: a typed, closed schema.

Every model forbids unknown keys and is frozen: a policy is validated once when it is loaded, and
the request path only reads it. Names here are a contract with the ops teams who write policies.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints, model_validator

from gateway.policy.answer_checks import AnswerChecks
from gateway.policy.closed import Closed
from gateway.policy.metering import Budget, Metering
from gateway.policy.pools import PoolLoad, Priority, ServerDialect
from gateway.policy.replicas import RateLimit, StateSettings
from gateway.policy.quality import Canaries
from gateway.policy.tracing import Tracing

Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")]
PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]
HoldSeconds = Annotated[float, Field(ge=0, le=86_400)]
UsdPerMtok = Annotated[float, Field(ge=0, le=1_000_000)]

# Providers the gateway speaks to itself: `openai` (the fast path), `azure` (Azure OpenAI, the same
# bytes at Azure's paths), `anthropic` (the Messages API, translated by gateway/wires/) and `sim` (a
# simulated upstream started inside the gateway). The rest go through litellm's adapters.
NATIVE_KINDS = frozenset({"openai", "azure", "anthropic", "sim"})
LITELLM_KINDS = frozenset(
    {
        "azure_ai", "bedrock", "cohere", "cohere_chat", "databricks", "deepseek",
        "fireworks_ai", "gemini", "groq", "huggingface", "mistral", "nvidia_nim", "openrouter",
        "perplexity", "sagemaker", "together_ai", "vertex_ai", "watsonx", "xai",
    }
)
KINDS = NATIVE_KINDS | LITELLM_KINDS


def endpoint_label(url: str) -> str:
    """How a pool's endpoint is named in keys and metrics: its host and port, never the URL's credentials."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].rpartition("@")[2]


class Timeouts(Closed):
    """Bounds on one upstream attempt. `first_token_s` catches hung requests, `idle_s` stalled streams."""

    connect_s: PositiveSeconds = 2.0
    first_token_s: PositiveSeconds = 15.0            # the cap; with a baseline, a stream's limit is usually less:
    first_token_factor: Annotated[float, Field(ge=0, le=1000)] = 5.0   # × the deployment's recent p99 (0: off) …
    first_token_floor_s: PositiveSeconds = 2.0       # … but never under this floor
    cold_first_token_s: PositiveSeconds = 4.0        # before a baseline, with none among the route's peers either
    idle_s: PositiveSeconds = 30.0
    total_s: PositiveSeconds = 600.0


class TimeoutOverrides(Closed):
    """A route's own bounds; each one left out keeps the provider's."""

    connect_s: PositiveSeconds | None = None
    first_token_s: PositiveSeconds | None = None
    first_token_factor: Annotated[float, Field(ge=0, le=1000)] | None = None
    first_token_floor_s: PositiveSeconds | None = None
    cold_first_token_s: PositiveSeconds | None = None
    idle_s: PositiveSeconds | None = None
    total_s: PositiveSeconds | None = None

    def over(self, base: Timeouts) -> Timeouts:
        return base.model_copy(update={k: v for k, v in self.model_dump().items() if v is not None})


class ModelFacts(Closed):
    """What the policy knows about one model of a provider; prices override litellm's map."""

    input_usd_per_mtok: UsdPerMtok | None = None
    output_usd_per_mtok: UsdPerMtok | None = None
    cached_input_usd_per_mtok: UsdPerMtok | None = None
    cache_write_usd_per_mtok: UsdPerMtok | None = None   # prompt-cache writes (Anthropic's cache_creation)
    context_window: Annotated[int, Field(gt=0)] | None = None
    max_output_tokens: Annotated[int, Field(gt=0)] | None = None   # a translated request's default max_tokens
    # A local GPU deployment may be priced by the hour instead of by the token.
    gpu_hour_usd: UsdPerMtok | None = None
    tokens_per_second: Annotated[float, Field(gt=0)] | None = None
    # Does the model continue an answer given as a trailing assistant message? None: not known yet
    # (tried, and learnt from a 400 when it does not).
    prefill: bool | None = None


class SimSettings(Closed):
    """A simulated upstream that the gateway starts on loopback (kind: sim)."""

    wire: Literal["openai", "azure", "anthropic"] = "openai"
    reply_tokens: Annotated[int, Field(ge=1, le=4096)] = 20
    first_token_delay_s: Annotated[float, Field(ge=0, le=600)] = 0.0
    chunk_delay_s: Annotated[float, Field(ge=0, le=60)] = 0.0
    embedding_dim: Annotated[int, Field(ge=1, le=8192)] = 8
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    reply_word: Name | None = None          # the reply's first word (default: the provider's name)
    prefill: bool = True                    # false: refuses a chat that ends in an assistant message (400)
    dumb: bool = False                      # fluent but wrong answers from the start (quality canaries fail)
    agent: bool = False                     # agent mode: calls a shell or Read tool only when a prompt asks (`run:`, `read:`)
    speed: Annotated[float, Field(gt=0, le=100)] = 1.0   # delays divided by this: 0.5 is a replica half as fast

    class Broken(Closed):
        """Answers broken one way on a schedule: from `after_s` after start, for `for_s` (absent: on)."""

        answers: Literal["wrong_script", "empty", "loop", "bad_tool_args"]
        after_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0
        for_s: PositiveSeconds | None = None

    broken: Broken | None = None            # answers broken on a schedule (the answer checks' brownouts)

    class Gpu(Closed):
        """A GPU model server's capacity (gateway/sim/gpu.py has the model): batch, queue, prefix cache."""

        server: Literal["vllm", "sglang", "tgi", "llamacpp", "ollama", "openai"] = "vllm"   # its /metrics names
        max_batch: Annotated[int, Field(ge=1, le=4096)] = 8
        max_waiting: Annotated[int, Field(ge=0, le=1_000_000)] | None = None   # beyond it: 503 (TGI: 429)
        prefill_ms_per_ktok: Annotated[float, Field(ge=0, le=60_000)] = 20.0
        decode_ms_per_token: Annotated[float, Field(ge=0, le=10_000)] = 10.0
        slowdown: Annotated[float, Field(ge=0, le=100)] = 1.0      # a full batch decodes (1 + slowdown) × slower
        kv_tokens: Annotated[int, Field(ge=1, le=100_000_000)] = 200_000
        prefix_cache_entries: Annotated[int, Field(ge=0, le=10_000_000)] = 256   # chunks of chunk_tokens
        chunk_tokens: Annotated[int, Field(ge=1, le=4096)] = 64

    gpu: Gpu | None = None                  # a GPU server's batch, queue, prefix cache and /metrics


class Provider(Closed):
    kind: str
    base_url: str | None = None
    # A pool: replicas of the same models, each its own deployment for health (`provider/model@host:port`).
    # A list of base URLs, or for kind sim the number of simulated replicas to start.
    endpoints: list[Annotated[str, StringConstraints(min_length=1, max_length=512)]] | \
        Annotated[int, Field(ge=1, le=64)] | None = None
    server: ServerDialect | None = None      # the dialect of each endpoint's /metrics (default: openai, none read)
    load: PoolLoad = PoolLoad()
    api_key: SecretStr | None = None
    api_version: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None  # azure, anthropic
    anthropic_beta: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = []
    # `litellm`: a kind the gateway speaks natively (anthropic, azure, openai) goes through litellm's
    # adapter instead, to compare the two or to reach for something only litellm translates.
    via: Literal["native", "litellm"] = "native"
    timeouts: Timeouts = Timeouts()
    models: dict[Name, ModelFacts] = {}
    sim: SimSettings | None = None
    # Whether the upstream answers the Responses API (`/responses`) itself, so Responses requests
    # pass through; otherwise they are translated to chat. Unset: OpenAI itself and OpenAI-wire sims
    # do, other OpenAI-wire servers (vLLM, Ollama, llama.cpp …) are taken to be chat-only.
    responses: bool | None = None
    # `client`: called with each caller's own credentials (a subscription's OAuth bearer, a personal
    # key), which the caller sends in Authorization or x-api-key while naming its gateway key in
    # x-recloser-key; such a provider has no api_key. A 401/403 or a usage limit (429) from it fails
    # that caller over and keeps its credential off this provider for a while, never the provider.
    credentials: Literal["gateway", "client"] = "gateway"
    # After a 401/403 of a client credential (or a 429 that says no reset): not tried again for this long.
    credential_cooldown_s: PositiveSeconds = 60.0

    @model_validator(mode="after")
    def client_credentials_shape(self) -> Provider:
        if self.credentials != "client":
            return self
        if self.api_key is not None:
            raise ValueError("credentials: client calls the provider with each caller's own credentials; "
                             "remove api_key")
        wire = self.sim.wire if self.kind == "sim" and self.sim is not None else \
            ("openai" if self.kind == "sim" else self.kind)
        if wire not in ("openai", "anthropic") or self.via == "litellm":
            raise ValueError("credentials: client needs kind openai or anthropic (or a sim of either wire), "
                             "called natively")
        if self.endpoints is not None:
            raise ValueError("credentials: client is for a provider's own API, not a pool of endpoints")
        return self

    @model_validator(mode="after")
    def responses_needs_openai_wire(self) -> Provider:
        if self.responses and not (self.kind == "openai" or (self.kind == "sim" and (self.sim is None or
                                                                                     self.sim.wire == "openai"))):
            raise ValueError("responses: true needs an OpenAI-wire provider (kind openai, or a sim with wire openai)")
        return self

    @model_validator(mode="after")
    def pool_shape(self) -> Provider:
        if self.endpoints is None:
            if self.server is not None:
                raise ValueError("server: names the metrics dialect of a pool's endpoints; give endpoints")
            return self
        if self.base_url is not None:
            raise ValueError("give endpoints (a pool) or base_url (one server), not both")
        if isinstance(self.endpoints, int):
            if self.kind != "sim":
                raise ValueError("endpoints: a number starts that many simulated replicas (kind sim); "
                                 "list the base URLs of real ones")
            return self
        if not self.endpoints:
            raise ValueError("endpoints: list at least one base URL")
        hosts = set()
        for url in self.endpoints:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint {url!r} must start with http:// or https://")
            host = endpoint_label(url)
            if host in hosts:
                raise ValueError(f"endpoint {host} is listed twice")
            hosts.add(host)
        return self

    def speaks_responses(self) -> bool:
        if self.responses is not None:
            return self.responses
        if self.kind == "sim":
            return self.sim is None or self.sim.wire == "openai"
        return self.kind == "openai" and self.endpoints is None and \
            (self.base_url is None or "api.openai.com" in self.base_url)


class Target(Closed):
    provider: Name
    model: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    priority: Annotated[int, Field(ge=0, le=1000)] | None = None   # equal priorities are balanced; default: list order
    # Quality tier: 1 is the intended quality, 2, 3 … lower. Default: the tier of the target before
    # (the first target's is 1), so a policy that never says `tier` never labels an answer degraded.
    tier: Annotated[int, Field(ge=1, le=9)] | None = None


class Breaker(Closed):
    """When a deployment is degraded or ejected, and how it comes back. Defaults suit frontier APIs."""

    consecutive_failures: Annotated[int, Field(ge=1, le=1000)] = 5     # in a row → ejected
    failure_rate: Annotated[float, Field(gt=0, le=1)] = 0.5            # over the window → ejected
    degraded_failure_rate: Annotated[float, Field(gt=0, le=1)] = 0.2   # over the window → degraded
    min_requests: Annotated[int, Field(ge=1, le=100_000)] = 10         # before rates count
    window_s: PositiveSeconds = 30.0
    base_ejection_s: PositiveSeconds = 30.0                            # × ejection count …
    max_ejection_s: PositiveSeconds = 300.0                            # … capped here
    slow_ttft_factor: Annotated[float, Field(gt=1, le=1000)] = 3.0     # first token this much slower → degraded
    eject_ttft_factor: Annotated[float, Field(gt=1, le=10_000)] = 10.0 # this much slower than its own baseline → ejected
    slow_min_s: Annotated[float, Field(ge=0, le=600)] = 0.2            # … and at least this much later, in seconds
    slow_tokens_factor: Annotated[float, Field(gt=1, le=10_000)] = 10.0  # tokens this much slower than usual → degraded …
    slow_token_min_s: Annotated[float, Field(ge=0, le=60)] = 0.02      # … and at least this much longer between tokens
    degraded_share: Annotated[float, Field(ge=0, le=1)] = 0.1          # share of its traffic a degraded target keeps
    probe_requests: Annotated[int, Field(ge=1, le=100)] = 3            # successes in a row that end probing
    synthetic_probe_s: Annotated[float, Field(ge=0, le=3600)] = 0.0    # >0: probe an ejected target this often
    active_probes: bool = True                                         # probe an ejected target while it is out …
    probe_interval_s: PositiveSeconds = 5.0                            # … this often (jittered), however long the ejection
    slow_start_s: Annotated[float, Field(ge=0, le=3600)] = 10.0        # a recovered target's traffic ramps up over this; 0: at once
    explore_percent: Annotated[float, Field(ge=0, le=50)] = 5.0        # requests that refresh a fallback's latency
    panic_percent: Annotated[float, Field(ge=0, le=100)] = 50.0        # below this healthy share, use every target
    enabled: bool = True


class Retry(Closed):
    """Retries on the same deployment, for blips (reset, 502/503/504, a short 429)."""

    attempts: Annotated[int, Field(ge=1, le=10)] = 2                   # tries per deployment, the first included
    backoff_s: Annotated[float, Field(ge=0, le=60)] = 0.05             # base of exponential backoff with jitter
    max_backoff_s: Annotated[float, Field(ge=0, le=300)] = 1.0
    short_retry_after_s: Annotated[float, Field(ge=0, le=60)] = 2.0    # a 429 asking for longer fails over instead
    budget_percent: Annotated[float, Field(ge=0, le=100)] = 20.0       # retries at most this share of requests …
    budget_min_per_s: Annotated[float, Field(ge=0, le=10_000)] = 3.0   # … but always this many per second


class Hedge(Closed):
    """Start a second candidate when the first is slow to its first token; the first to answer wins."""

    after_s: PositiveSeconds | None = None                              # a fixed delay, or …
    after_percentile: Annotated[float, Field(gt=0, lt=100)] | None = None  # … this percentile of recent TTFT
    min_after_s: Annotated[float, Field(ge=0, le=600)] = 0.05
    max_percent: Annotated[float, Field(ge=0, le=100)] = 10.0          # hedges at most this share of requests

    @model_validator(mode="after")
    def one_delay(self) -> Hedge:
        if (self.after_s is None) == (self.after_percentile is None):
            raise ValueError("give exactly one of after_s and after_percentile")
        return self


class Route(Closed):
    targets: Annotated[list[Target], Field(min_length=1, max_length=32)]
    description: str | None = None
    timeout_s: PositiveSeconds = 600.0      # the whole request, every attempt included
    timeouts: TimeoutOverrides | None = None  # overrides the providers' own for this route
    breaker: Breaker | None = None          # overrides the top-level breaker for this route
    retry: Retry = Retry()
    hedge: Hedge | None = None
    mid_stream: Literal["error", "resume"] = "resume"     # after bytes reached the client: continue elsewhere
    on_content_filter: Literal["answer", "fail_over"] = "answer"   # a safety refusal is the answer, by default
    # When a full pool is the last target standing: critical and standard requests wait their turn in
    # the gateway (critical first), sheddable ones get 503 with Retry-After. A key's own priority wins.
    priority: Priority = "standard"
    answer_checks: AnswerChecks | None = None   # overrides the top-level answer_checks for this route
    # When no target can answer (all failed or ejected): keep the request waiting up to this long for
    # one to come back instead of failing it (streams get their headers and keepalives meanwhile);
    # critical before standard, sheddable never held. 0: fail at once. A key's own hold_s wins.
    hold_s: HoldSeconds = 0.0


class ApiKey(Closed):
    id: Name
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]
    team: Name
    app: Name
    admin: bool = False
    metrics: bool = False      # may scrape /metrics on the API port when `operations.metrics_require_key`
    priority: Priority | None = None   # before a full pool that is the last target standing; default: the route's
    hold_s: HoldSeconds | None = None  # held through an outage this long on every route; default: the route's


class Auth(Closed):
    keys: Annotated[list[ApiKey], Field(min_length=1)]


class Limits(Closed):
    max_body_bytes: Annotated[int, Field(ge=1024, le=256 * 1024 * 1024)] = 8 * 1024 * 1024
    # Per process. Beyond it a request is refused at once (503, Retry-After) rather than queued until
    # everyone times out. LLM calls are long, so this counts streams that are waiting on tokens too.
    # Unset: what the process's file descriptors hold, two per request (gateway/serving/capacity.py).
    max_in_flight: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    shed_retry_after_s: Annotated[int, Field(ge=1, le=3600)] = 1
    # Per process. When the event loop keeps running this late, the gateway's own CPU is the
    # bottleneck and requests queue where the in-flight count cannot see them: the admission cap
    # drops until the loop is on time again (gateway/flow/admission.py). 0 turns it off.
    max_loop_lag_ms: Annotated[int, Field(ge=0, le=60_000)] = 20
    # How long a newcomer that cap refuses may wait in line for room (a burst's own lag clears in
    # well under a second, once its requests are under way) before it is shed. 0 (the default): shed
    # at once; a sustained overload's 503s then come at once too, where a wait would delay each by it.
    loop_lag_wait_ms: Annotated[int, Field(ge=0, le=10_000)] = 0
    # How long a newcomer asking for a stream may wait so: an agent's stream is a turn of minutes that
    # a refusal costs whole, and thousands of agents starting at once make just such a burst.
    stream_loop_lag_wait_ms: Annotated[int, Field(ge=0, le=10_000)] = 5000
    # Per process. From this many requests in flight, what survives a young collection is frozen
    # out of later ones (open streams are not garbage), and thawed once they fall under half of it:
    # no collector pauses over thousands of open streams (gateway/serving/collector_freeze.py). 0: never.
    collector_freeze_in_flight: Annotated[int, Field(ge=0, le=1_000_000)] = 1000
    # A client must have sent its request line, headers and body within this long; a slow one is cut
    # off (408) before the gateway opens any upstream connection for it.
    request_read_timeout_s: PositiveSeconds = 30.0
    # The most of one upstream answer that is read (a whole body, or a whole stream): an upstream
    # that sends more is a failed attempt, never a gateway that runs out of memory. Real answers are
    # far smaller, but 3,072-dimension float embeddings of 2,048 inputs in one call come near
    # 100 MB: raise it for such batches (or ask for `encoding_format: base64`, a quarter the size).
    max_upstream_body_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024 * 1024)] = 64 * 1024 * 1024
    # On SIGTERM: readiness fails at once, requests in flight get this long to finish.
    shutdown_grace_s: Annotated[float, Field(ge=0, le=3600)] = 25.0
    # Per process: requests held through an outage (a route's hold_s), counted apart from those in
    # flight. Beyond it, a request no target answers fails at once, as without hold_s.
    max_held: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000


class Operations(Closed):
    """Who may see the operational endpoints."""

    # /metrics shows spend per team: when true, on the API port it wants a key with `admin` or
    # `metrics` (a separate listener, `serve --metrics-port`, needs none).
    metrics_require_key: bool = False
    # The console's page at /admin/ui (false: 404). /admin/state, its data, is an admin route either way.
    console: bool = True


class ResponseStore(Closed):
    """The Responses the gateway keeps so `previous_response_id` survives a change of provider."""

    ttl_s: Annotated[float, Field(gt=0, le=30 * 86_400)] = 86_400.0
    max_responses: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000


class PolicyDocument(Closed):
    version: Literal[1]
    providers: Annotated[dict[Name, Provider], Field(min_length=1)]
    routes: Annotated[dict[Name, Route], Field(min_length=1)]
    auth: Auth | None = None
    limits: Limits = Limits()
    operations: Operations = Operations()
    breaker: Breaker = Breaker()
    metering: Metering = Metering()
    budgets: list[Budget] = []
    rate_limits: list[RateLimit] = []
    state: StateSettings | None = None          # absent: state is kept in this process
    response_store: ResponseStore = ResponseStore()
    canaries: Canaries | None = None
    tracing: Tracing | None = None              # absent: the OTEL_* variables alone decide
    answer_checks: AnswerChecks = AnswerChecks()   # checks on live answers (policy/answer_checks.py)
