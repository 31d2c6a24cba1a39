"""Rate limits at admission: rpm counted on arrival, tpm from the tokens requests used, OpenAI's headers."""

from __future__ import annotations

from gateway.limiting.limiter import Limiter
from gateway.policy.replicas import RateLimit
from gateway.state.memory import MemoryState

T0 = 1_800_000_000.0


class Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def limiter(*limits: RateLimit) -> tuple[Limiter, Wall]:
    wall = Wall()
    return Limiter(limits, None, MemoryState(), wall), wall


async def test_a_caller_without_limits_is_not_counted() -> None:
    lim, _ = limiter(RateLimit(name="x", team="search", rpm=1))
    assert await lim.admit("ads", "k") is None


async def test_rpm_admits_its_limit_then_refuses_until_the_minute_has_passed() -> None:
    lim, wall = limiter(RateLimit(name="search-rpm", team="search", rpm=2))
    first = await lim.admit("search", "k")
    assert first is not None and first.admitted
    assert first.headers == {"x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "1",
                             "x-ratelimit-reset-requests": "1m0s"}
    wall.now += 10
    assert (await lim.admit("search", "k")).admitted  # type: ignore[union-attr]
    refused = await lim.admit("search", "k")
    assert refused is not None and not refused.admitted
    assert (refused.kind, refused.retry_after_s) == ("requests", 50)
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert "Rate limit 'search-rpm' reached for team search on requests per minute: limit 2" in refused.message
    wall.now += 50
    assert (await lim.admit("search", "k")).admitted  # type: ignore[union-attr]


async def test_tpm_counts_the_tokens_requests_used_once_they_ended() -> None:
    lim, wall = limiter(RateLimit(name="k-tpm", key="k1", tpm=100))
    assert (await lim.admit("search", "k1")).admitted  # type: ignore[union-attr]
    lim.used("search", "k1", 60)
    second = await lim.admit("search", "k1")
    assert second is not None and second.admitted and second.headers["x-ratelimit-remaining-tokens"] == "40"
    lim.used("search", "k1", 40)
    refused = await lim.admit("search", "k1")
    assert refused is not None and not refused.admitted and refused.kind == "tokens"


async def test_a_refusal_by_one_limit_takes_nothing_from_the_others() -> None:
    lim, _ = limiter(RateLimit(name="team", team="search", rpm=10), RateLimit(name="key", key="k1", rpm=1))
    assert (await lim.admit("search", "k1")).admitted  # type: ignore[union-attr]
    assert not (await lim.admit("search", "k1")).admitted  # type: ignore[union-attr]
    other_key = await lim.admit("search", "k2")
    assert other_key is not None and other_key.headers["x-ratelimit-remaining-requests"] == "8"


async def test_the_headers_speak_of_the_tightest_limit() -> None:
    lim, _ = limiter(RateLimit(name="team", team="search", rpm=100), RateLimit(name="key", key="k1", rpm=5))
    check = await lim.admit("search", "k1")
    assert check is not None and check.headers["x-ratelimit-limit-requests"] == "5"
