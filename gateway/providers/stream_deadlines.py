"""Every open stream's idle and total bounds on one timer, checked lazily.

aiohttp bounds a stream's reads with a timer of its own per connection, cancelled and made anew on
every chunk the socket delivers (`sock_read`), and its total bound with another timer per request and
a context entered on every read. With thousands of open streams that was some 6 µs of CPU per relayed
chunk and two timers (with their handles and contexts) kept per stream.

Here a stream's reader only notes when it last read (a float), and the streams sit in buckets by
the time their bound could next run out (a tenth of a second wide). One timer, at the earliest
bucket, looks at the streams in it: one whose bound has run out gets a `TimeoutError` where it reads
(the same error aiohttp's timers raised); the others move to the bucket of their new due time. So a
stream that reads steadily costs one look per idle bound, not a timer per chunk; a stall is found
within a tenth of a second of its bound.
"""

from __future__ import annotations

import asyncio
import heapq
import math

import aiohttp

BUCKET_S = 0.1   # how late past its bound a stall may be found


class Followed:
    """One stream's bounds: read nothing for `idle_s`, or read past `ends_at`, and it times out."""

    __slots__ = ("deadlines", "content", "idle_s", "ends_at", "last_read", "bucket")

    def __init__(self, deadlines: StreamDeadlines, content: aiohttp.StreamReader, idle_s: float, ends_at: float,
                 now: float) -> None:
        self.deadlines = deadlines
        self.content: aiohttp.StreamReader | None = content
        self.idle_s = idle_s
        self.ends_at = ends_at
        self.last_read = now    # the reader sets this after each read (the loop's clock)
        self.bucket = 0

    def due(self) -> float:
        return min(self.last_read + self.idle_s, self.ends_at)

    def drop(self) -> None:
        """The stream ended: no longer bounded."""
        self.deadlines.drop(self)


class StreamDeadlines:
    """The open streams of one event loop, in buckets by due time, under one timer."""

    def __init__(self) -> None:
        self._buckets: dict[int, set[Followed]] = {}
        self._order: list[int] = []          # the buckets' keys, a heap
        self._timer: asyncio.TimerHandle | None = None
        self._armed = math.inf               # the bucket the timer is set for

    def follow(self, content: aiohttp.StreamReader, idle_s: float, ends_at: float, now: float | None = None) -> Followed:
        """Bounds a stream from `now` (the loop's clock, by default) on; `ends_at` on the same clock."""
        followed = Followed(self, content, idle_s, ends_at, asyncio.get_running_loop().time() if now is None else now)
        self._place(followed)
        return followed

    def drop(self, followed: Followed) -> None:
        """The stream ended: out of its bucket, and its reader let go."""
        followed.content = None
        bucket = self._buckets.get(followed.bucket)
        if bucket is not None:
            bucket.discard(followed)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def _place(self, followed: Followed) -> None:
        key = math.ceil(followed.due() / BUCKET_S)
        followed.bucket = key
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
            heapq.heappush(self._order, key)
        bucket.add(followed)
        if key < self._armed:
            self._arm(key)

    def _arm(self, key: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed = key
        self._timer = asyncio.get_running_loop().call_at(key * BUCKET_S, self._expire)

    def _expire(self) -> None:
        self._timer, self._armed = None, math.inf
        self.check(asyncio.get_running_loop().time())
        if self._order and self._timer is None:
            self._arm(self._order[0])

    def check(self, now: float) -> None:
        """Times out the streams whose bound ran out by `now`; the others of the buckets due wait on."""
        while self._order and self._order[0] * BUCKET_S <= now:
            for followed in self._buckets.pop(heapq.heappop(self._order), ()):
                if followed.content is None:
                    continue
                if followed.due() <= now:
                    content, followed.content = followed.content, None
                    content.set_exception(TimeoutError("the stream read nothing within its bound"))
                else:
                    self._place(followed)
