"""Replicas sharing state (a real redis-server) share the cool-down of a refused client credential: a
credential one replica saw refused is skipped by the other without a round trip, once that one has
heard of it; another caller's credential is not."""

from __future__ import annotations

from typing import Any

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import UPSTREAM_KEY, GatewayFactory
from tests.integration.test_client_credentials import GATEWAY_KEY, OAUTH_A, OAUTH_B, ask, claude, digest
from tests.redis_server import RedisServer

SHARED = f"""
state: {{redis_url: "{{redis}}", timeout_ms: 1000, sync_ms: 1000}}
auth:
  keys: [{{id: dev-laptop, sha256: {digest(GATEWAY_KEY)}, team: dev, app: agents}}]
routes:
  claude:
    targets:
      - {{provider: subscription, model: claude-sonnet-4-5}}
      - {{provider: anthropic-key, model: claude-sonnet-4-5}}
"""


def first_replica(redis: RedisServer) -> str:
    return f"""
version: 1
providers:
  subscription: {{kind: sim, credentials: client, sim: {{wire: anthropic, reply_word: sub, reply_tokens: 3}}}}
  anthropic-key: {{kind: sim, api_key: {UPSTREAM_KEY}, sim: {{wire: anthropic, reply_word: org, reply_tokens: 3}}}}
{SHARED.replace("{redis}", redis.url)}"""


def second_replica(redis: RedisServer, first: EmbeddedGateway) -> str:
    """The same providers, reached at the first replica's simulators."""
    return f"""
version: 1
providers:
  subscription: {{kind: anthropic, credentials: client, base_url: "{first.sim("subscription").base_url}"}}
  anthropic-key: {{kind: anthropic, api_key: {UPSTREAM_KEY}, base_url: "{first.sim("anthropic-key").base_url}"}}
{SHARED.replace("{redis}", redis.url)}"""


def exchange(gw: EmbeddedGateway) -> None:
    """One exchange with the shared store now, rather than at the next tick."""
    replication: Any = gw.context.reloader.process.replication  # type: ignore[union-attr]
    gw.run(replication.sync())


def test_a_credential_refused_on_one_replica_is_skipped_by_the_other_without_a_round_trip(
        start_gateway: GatewayFactory, redis_server: RedisServer) -> None:
    one = start_gateway(first_replica(redis_server))
    two = start_gateway(second_replica(redis_server, one))
    subscription = one.sim("subscription")
    assert ask(claude(two, OAUTH_A)).startswith("sub")      # the second replica has served this caller
    assert ask(claude(two, OAUTH_B)).startswith("sub")
    exchange(two)

    one.set_fault("subscription", Fault(status=401, only_credential=OAUTH_A))
    assert ask(claude(one, OAUTH_A)).startswith("org")      # refused on the first replica, cooled there
    exchange(one)
    exchange(two)
    calls = subscription.request_count()
    assert ask(claude(two, OAUTH_A)).startswith("org")
    assert subscription.request_count() == calls             # skipped: the other replica told
    assert ask(claude(two, OAUTH_B)).startswith("sub")       # another caller's credential is still used
