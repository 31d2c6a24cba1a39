"""Hot reload: a new policy is read, validated in full and built beside the running one, then swapped
in with one assignment. A request keeps the runtime it started with; a bad file changes nothing.

Triggers: the policy file changing (polled: works for editors that replace the file and for
Kubernetes ConfigMaps, which swap a symlink), SIGHUP, and `POST /admin/reload`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable

from gateway.flow.admission import Admission
from gateway.serving.capacity import max_in_flight
from gateway.metering.prices import unpriced_targets
from gateway.flow.context import GatewayContext
from gateway.policy.load import LoadedPolicy, PolicyError, ReloadResult, parse_policy, read_policy_text
from gateway.policy.schema import NATIVE_KINDS
from gateway.providers.litellm_bridge import LitellmBridge
from gateway.flow.prober import Prober
from gateway.flow.runtime import Process, Runtime, build_runtime
from gateway.serving.sim_pool import SimPool

log = logging.getLogger("recloser.reload")

def refusal(loaded: LoadedPolicy, open_ok: bool) -> PolicyError | None:
    """What makes a valid policy unfit to replace the running one in this process."""
    if loaded.document.auth is None and not open_ok:
        return PolicyError(loaded.source, 1, "no auth section: a gateway serving beyond loopback keeps requiring "
                                             "keys; add auth.keys")
    return None


def restart_notes(loaded: LoadedPolicy, running: LoadedPolicy) -> list[str]:
    """Settings a reload cannot apply to what the process already runs: they wait for a restart."""
    new, old = loaded.document, running.document
    notes = []
    if new.metering.ledger != old.metering.ledger:
        notes.append(f"{loaded.source}: metering.ledger changes take effect at the next restart "
                     "(the ledger writer keeps running)")
    if new.state != old.state:
        notes.append(f"{loaded.source}: state: changes to the shared state store take effect at the next restart")
    if new.canaries != old.canaries:
        notes.append(f"{loaded.source}: canaries: changes take effect at the next restart (which deployments "
                     "they watch follows the policy at once)")
    if new.response_store != old.response_store:
        notes.append(f"{loaded.source}: response_store: changes take effect at the next restart")
    if new.tracing != old.tracing:
        notes.append(f"{loaded.source}: tracing: changes take effect at the next restart")
    if new.limits.max_body_bytes > old.limits.max_body_bytes:
        notes.append(f"{loaded.source}: limits.max_body_bytes: a larger limit takes effect at the next restart "
                     "(the server reads bodies up to the size it started with)")
    if new.limits.collector_freeze_in_flight != old.limits.collector_freeze_in_flight:
        notes.append(f"{loaded.source}: limits.collector_freeze_in_flight takes effect at the next restart "
                     "(the collector's freezing is set up at start)")
    for name, provider in new.providers.items():
        before = old.providers.get(name)
        if provider.kind == "sim" and before is not None and before.kind == "sim" and \
                (provider.sim, provider.api_key) != (before.sim, before.api_key):
            notes.append(f"{loaded.source}: providers.{name}: a running simulated provider keeps its settings "
                         "until the next restart")
    return notes


class Reloader:
    def __init__(self, ctx: GatewayContext, process: Process, sims: SimPool, bridge: LitellmBridge,
                 open_ok: bool = True, watch_s: float | None = 1.0,
                 fan_out: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self.process = process
        self.sims = sims
        self.bridge = bridge
        self.open_ok = open_ok
        self.watch_s = watch_s
        self.fan_out = fan_out          # tells the other workers to reload (a supervised worker's parent)
        self.prober: Prober | None = None
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._refused_sha = ""          # a bad file is reported once, not at every poll
        self._requested: set[asyncio.Task[ReloadResult]] = set()

    def activate(self, runtime: Runtime) -> None:
        """Makes `runtime` the one new requests get: the swap itself is one assignment."""
        old = self.ctx.runtime if self.ctx.has_runtime else None
        process, doc = self.process, runtime.policy.document
        process.board.track(runtime.routing.deployments(), tuple(runtime.routing.routes.values()))
        process.board.default_breaker = doc.breaker
        process.budgets.adopt(doc.budgets)
        runtime.meter.show_budgets(runtime.meter.now_utc())
        process.limiter.adopt(doc.rate_limits)
        if process.replication is not None:
            process.replication.adopt(runtime.routing, runtime.dispatcher, runtime.meter)
        self.ctx.runtime = runtime
        if self.ctx.canaries is not None:
            self.ctx.canaries.watch(runtime.routing.deployments(), runtime.meter.prices)
        retune(self.ctx.admission, max_in_flight(doc.limits.max_in_flight), doc.limits.max_loop_lag_ms,
               doc.limits.loop_lag_wait_ms, doc.limits.stream_loop_lag_wait_ms)
        if process.holds is not None:
            process.holds.max_held = doc.limits.max_held
        m = self.process.metrics
        if old is not None and old.policy.sha256 != runtime.policy.sha256:
            m.policy_info(old.policy.sha256).set(0)
        m.policy_info(runtime.policy.sha256).set(1)

    def start(self) -> None:
        self._start_prober(self.ctx.runtime)
        if self.watch_s:
            self._watcher = asyncio.create_task(self._watch(self.watch_s), name="policy watcher")

    async def stop(self) -> None:
        for task in (self._watcher, *self._requested):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watcher = None
        await self._stop_prober()

    def request(self, trigger: str) -> None:
        """A reload from a signal handler: run it as a task, reported in the log and the metrics."""
        task = asyncio.get_running_loop().create_task(self.reload(trigger))
        self._requested.add(task)
        task.add_done_callback(self._requested.discard)

    async def reload(self, trigger: str) -> ReloadResult:
        """Reads the policy file again and, when it is valid and new, serves it."""
        async with self._lock:
            result = await self._reload(trigger)
        self.process.metrics.policy_reloads(result.result).inc()
        if result.result == "error":
            log.error("policy reload (%s) refused; still serving sha256 %s: %s", trigger, result.sha256[:12],
                      result.message)
        else:
            log.info("policy reload (%s): %s, serving sha256 %s", trigger, result.result, result.sha256[:12])
        for warning in result.warnings:
            log.warning("policy reload: %s", warning)
        if trigger == "admin" and result.result == "ok" and self.fan_out is not None:
            self.fan_out()
        return result

    async def _reload(self, trigger: str) -> ReloadResult:
        running = self.ctx.runtime
        old = running.policy
        try:
            text = await asyncio.to_thread(read_policy_text, old.source)
            sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if sha == old.sha256:
                return ReloadResult("unchanged", old.sha256, "the policy file has not changed")
            # Validation builds a price book from litellm's map: off the event loop.
            loaded = await asyncio.to_thread(parse_policy, text, old.source, None, (unpriced_targets,))
            refused = refusal(loaded, self.open_ok)
            if refused is not None:
                raise refused
        except PolicyError as exc:
            return ReloadResult("error", old.sha256, str(exc))
        notes = tuple(loaded.warnings) + tuple(restart_notes(loaded, old))
        doc = loaded.document
        try:
            upstreams = await self.sims.ensure(doc)
        except OSError as exc:
            return ReloadResult("error", old.sha256, f"{old.source}: a simulated provider could not start: "
                                                     f"{exc.strerror or exc}")
        if any(p.kind not in NATIVE_KINDS or p.via == "litellm" for p in doc.providers.values()):  # sims: native
            await self.bridge.load()
        runtime = build_runtime(loaded, self.process, upstreams, previous=running)
        self.activate(runtime)
        await self._stop_prober()
        self._start_prober(runtime)
        return ReloadResult("ok", loaded.sha256, f"serving {loaded.source}", notes)

    async def _watch(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            source = self.ctx.runtime.policy.source
            try:
                text = await asyncio.to_thread(read_policy_text, source)
            except PolicyError:
                continue                # mid-replace, or gone for now: the next poll looks again
            sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if sha in (self.ctx.runtime.policy.sha256, self._refused_sha):
                continue
            result = await self.reload("file changed")
            if result.result == "error":
                self._refused_sha = sha

    def _start_prober(self, runtime: Runtime) -> None:
        cfg = runtime.policy.document.breaker
        if Prober.wanted(runtime.routing, cfg):
            self.prober = Prober(runtime.routing, self.process.board, self.process.attempts, cfg, self.process.clock,
                                 on_answer=runtime.meter.probe)
            self.prober.start()

    async def _stop_prober(self) -> None:
        if self.prober is not None:
            await self.prober.stop()
            self.prober = None


def retune(admission: Admission, max_in_flight: int, max_loop_lag_ms: int, loop_lag_wait_ms: int = 0,
           stream_loop_lag_wait_ms: int = 0) -> None:
    """A reloaded policy's limits apply to the requests that come next; those in flight stay admitted."""
    admission.max_in_flight = max_in_flight
    admission.limit_s = max_loop_lag_ms / 1000
    admission.wait_s = loop_lag_wait_ms / 1000
    admission.stream_wait_s = stream_loop_lag_wait_ms / 1000
    admission.set_cap(min(admission.cap, max_in_flight) if admission.limit_s > 0 else max_in_flight)
