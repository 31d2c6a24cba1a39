"""Shared state in Redis, for replicas that must agree; never on a request's path longer than its timeout.

Every operation is bounded by `timeout_s`. The first failure marks the store down: the gauge goes to
0, one line is logged, and every later call raises StateUnavailable at once (no waiting) while a
background task pings with backoff; the first answer marks it up again and sharing resumes.
Updates that must be atomic (counters with their expiry, a limiter's check-and-add, a total seeded
when missing, a claim) run as Lua scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gateway.state.base import Ask, Draw, Outbox, Snapshot, StateUnavailable, Taken
from gateway.state.window import seconds_of

log = logging.getLogger("recloser.state")
T = TypeVar("T")

# KEYS: counters (one key per counter and second); ARGV: seconds to keep, then one amount per key.
ADD_COUNTS = """
local keep = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, ARGV[i + 1])
  redis.call('EXPIRE', key, keep)
end
return #KEYS
"""

# ARGV: key prefix, the second now, then (counter, seconds back) per window. The keys are made here,
# not sent: a window is dozens of keys and a snapshot reads dozens of windows. Returns per window the
# number of seconds that have counts, then (second, count) for each of them.
READ_COUNTS = """
local prefix, now, out = ARGV[1], tonumber(ARGV[2]), {}
for i = 3, #ARGV, 2 do
  local counter, window = ARGV[i], tonumber(ARGV[i + 1])
  local keys = {}
  for s = now - window + 1, now do keys[#keys + 1] = prefix .. counter .. ':' .. s end
  local values = redis.call('MGET', unpack(keys))
  local found = {}
  for j = 1, #keys do
    local n = tonumber(values[j] or '0') or 0
    if n ~= 0 then
      found[#found + 1] = now - window + j
      found[#found + 1] = n
    end
  end
  out[#out + 1] = #found / 2
  for _, v in ipairs(found) do out[#out + 1] = v end
end
return out
"""

# KEYS: totals; ARGV: (delta, seed, expire-at unix seconds) per key. A missing total starts at its seed.
ADD_TOTALS = """
for i, key in ipairs(KEYS) do
  local at = 3 * (i - 1)
  if redis.call('EXISTS', key) == 0 then redis.call('SET', key, ARGV[at + 2]) end
  redis.call('INCRBY', key, ARGV[at + 1])
  redis.call('EXPIREAT', key, ARGV[at + 3])
end
return #KEYS
"""

# KEYS[1]: the claim; ARGV: owner, milliseconds. Taken when free, renewed when ours.
CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# ARGV: key prefix, the number of windows, now, then per window: counter, limit, cost, seconds, first
# second. A window's keys (one per second, oldest first, the last is now) are made here rather than
# sent: a request pays for a few arguments, not sixty keys a window. Each window is judged as
# gateway/state/window.py:judge does; the costs are added only when every window admits. Returns
# per window: admitted, used, retry ms, reset ms.
TAKE = """
local prefix, n, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local verdicts, all_admitted, offset, all_keys = {}, true, 0, {}
for w = 1, n do
  local at = 3 + 5 * (w - 1)
  local counter, limit, cost, window, first = ARGV[at + 1], tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3]),
    tonumber(ARGV[at + 4]), tonumber(ARGV[at + 5])
  local keys = {}
  for i = 1, window do
    keys[i] = prefix .. counter .. ':' .. (first + i - 1)
    all_keys[offset + i] = keys[i]
  end
  local values = redis.call('MGET', unpack(keys))
  local counts, used, oldest = {}, 0, nil
  for i = 1, window do
    counts[i] = tonumber(values[i] or '0') or 0
    if counts[i] > 0 then
      used = used + counts[i]
      if not oldest then oldest = first + i - 1 end
    end
  end
  local want = math.max(cost, 1)
  local reset = 0
  if oldest then reset = oldest + window - now end
  local v
  if used + want <= limit then
    if cost > 0 and not oldest then reset = first + window - 1 + window - now end
    v = {1, used + cost, 0, reset, offset + window, cost, window}
  else
    all_admitted = false
    local need, freed, retry = used + want - limit, 0, window
    for i = 1, window do
      freed = freed + counts[i]
      if counts[i] > 0 and freed >= need then retry = first + i - 1 + window - now; break end
    end
    v = {0, used, math.max(1, math.floor(retry * 1000)), reset, 0, 0, window}
  end
  verdicts[w] = v
  offset = offset + window
end
local out = {}
for w = 1, n do
  local v = verdicts[w]
  if all_admitted and v[6] > 0 then
    redis.call('INCRBY', all_keys[v[5]], v[6])
    redis.call('EXPIRE', all_keys[v[5]], v[7] + 1)
  end
  out[#out + 1] = v[1]
  out[#out + 1] = v[2]
  out[#out + 1] = v[3]
  out[#out + 1] = math.max(0, math.floor(v[4] * 1000))
end
return out
"""


def where(url: str) -> str:
    """host:port of a Redis URL, never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


class RedisState:
    def __init__(self, url: str, timeout_s: float, prefix: str = "recloser",
                 on_up: Callable[[bool], None] = lambda up: None, max_backoff_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self.prefix = prefix
        self.on_up = on_up
        self.max_backoff_s = max_backoff_s
        self.where = where(url)
        self.up = False
        # redis-py is imported only by a gateway that shares state: importing it loads OpenTelemetry's
        # metrics SDK when that is installed, which a gateway without traces should not pay for.
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=max(timeout_s, 1.0), socket_connect_timeout=max(timeout_s, 1.0),
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._add_counts = self._client.register_script(ADD_COUNTS)
        self._add_totals = self._client.register_script(ADD_TOTALS)
        self._read_counts = self._client.register_script(READ_COUNTS)
        self._claim = self._client.register_script(CLAIM)
        self._take = self._client.register_script(TAKE)
        self._reconnecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connects once (bounded by the timeout); when that fails the gateway starts on local state."""
        try:
            await asyncio.wait_for(self._client.ping(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001  the gateway starts on local state whatever went wrong
            self.on_up(False)
            self._lost(exc)
            return
        self.up = True
        self.on_up(True)

    def _counter(self, counter: str, second: int) -> str:
        return f"{self.prefix}:c:{counter}:{second}"

    async def _run(self, op: Callable[[], Awaitable[T]]) -> T:
        if not self.up:
            raise StateUnavailable(f"shared state at {self.where} is down")
        try:
            return await asyncio.wait_for(op(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001  whatever the client raises, the request must not fail for it
            self._lost(exc)
            raise StateUnavailable(f"shared state at {self.where} is down") from None

    def _lost(self, exc: BaseException) -> None:
        if self._reconnecting is not None and not self._reconnecting.done():
            return
        if self.up or self._reconnecting is None:
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            log.warning("shared state at %s is unreachable (%s); serving on local state and reconnecting",
                        self.where, reason)
        self.up = False
        self.on_up(False)
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.05
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)
            with contextlib.suppress(Exception):
                # Idle connections from before the outage are dead or stuck: start from fresh ones.
                # (Those in use are the callers' own: a call that timed out drops its connection.)
                await asyncio.wait_for(self._client.connection_pool.disconnect(inuse_connections=False),
                                       self.timeout_s)
            try:
                await asyncio.wait_for(self._client.ping(), self.timeout_s)
            except Exception:  # noqa: BLE001  not yet: try again after the backoff
                continue
            self.up = True
            self.on_up(True)
            log.warning("shared state at %s answers again; sharing resumes", self.where)
            return

    async def exchange(self, out: Outbox, ask: Ask, now: float) -> Snapshot:
        return await self._run(lambda: self._exchange(out, ask, now))

    async def _exchange(self, out: Outbox, ask: Ask, now: float) -> Snapshot:
        pipe = self._client.pipeline(transaction=False)
        keys: list[str] = []
        amounts: list[int] = []
        for counter, per_second in out.counts.items():
            for second, amount in per_second.items():
                keys.append(self._counter(counter, second))
                amounts.append(amount)
        if keys:
            await self._add_counts(keys=keys, args=[out.horizon_s, *amounts], client=pipe)
        for name, (value, keep_s) in out.notes.items():
            pipe.set(f"{self.prefix}:n:{name}", value, px=max(1, math.ceil(keep_s * 1000)))
        if out.totals:
            args: list[Any] = []
            for t in out.totals.values():
                args += [t.delta, t.seed, math.ceil(t.expire_at)]
            await self._add_totals(keys=[f"{self.prefix}:t:{n}" for n in out.totals], args=args, client=pipe)
        windows = list(ask.counts)
        if windows:
            args = [f"{self.prefix}:c:", math.floor(now)]
            for counter in windows:
                args += [counter, ask.counts[counter]]
            # Declared keys would be every second of every window: the script derives them instead.
            await self._read_counts(keys=[], args=args, client=pipe)
        if ask.notes:
            pipe.mget([f"{self.prefix}:n:{n}" for n in ask.notes])
        if ask.totals:
            pipe.mget([f"{self.prefix}:t:{n}" for n in ask.totals])
        results = await pipe.execute()
        reads = results[len(results) - bool(windows) - bool(ask.notes) - bool(ask.totals):]
        snap = Snapshot()
        rest = reads
        if windows:
            flat, at = rest[0], 0
            for counter in windows:
                found = int(flat[at])
                pairs = flat[at + 1:at + 1 + 2 * found]
                at += 1 + 2 * found
                if found:
                    snap.counts[counter] = {int(pairs[i]): int(pairs[i + 1]) for i in range(0, len(pairs), 2)}
            rest = rest[1:]
        if ask.notes:
            snap.notes = {n: v.decode() for n, v in zip(ask.notes, rest[0]) if v is not None}
            rest = rest[1:]
        if ask.totals:
            snap.totals = {n: int(v) for n, v in zip(ask.totals, rest[0]) if v is not None}
        return snap

    async def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool:
        held = await self._run(lambda: self._claim(keys=[f"{self.prefix}:k:{name}"],
                                                   args=[owner, max(1, math.ceil(ttl_s * 1000))]))
        return bool(held)

    async def take(self, draws: Sequence[Draw], now: float) -> list[Taken]:
        args: list[Any] = [f"{self.prefix}:c:", len(draws), repr(now)]
        for d in draws:
            args += [d.counter, d.limit, d.cost, d.window_s, seconds_of(d.window_s, now)[0]]
        # The script derives each window's keys (see TAKE): declaring them would cost more than the check.
        flat = await self._run(lambda: self._take(keys=[], args=args))
        return [Taken(bool(flat[i]), int(flat[i + 1]), int(flat[i + 2]) / 1000, int(flat[i + 3]) / 1000)
                for i in range(0, len(flat), 4)]

    async def keep(self, key: str, value: bytes, ttl_s: float) -> None:
        """Stores a value under `key` for `ttl_s` (Redis expires it); raises StateUnavailable."""
        await self._run(lambda: self._client.set(f"{self.prefix}:v:{key}", value,
                                                 px=max(1, math.ceil(ttl_s * 1000))))

    async def read(self, key: str) -> bytes | None:
        """The value kept under `key`, None when there is none; raises StateUnavailable."""
        value = await self._run(lambda: self._client.get(f"{self.prefix}:v:{key}"))
        return value if isinstance(value, bytes) else None

    async def close(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.aclose(), self.timeout_s + 1.0)
