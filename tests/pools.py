"""A route of three vLLM replicas behind a frontier, built from policy text as the gateway builds it:
the pool the longest-prefix and spill tests and the prefix benchmark drive without sockets."""

from __future__ import annotations

import textwrap

from gateway.policy.load import parse_policy
from gateway.routing.table import RouteTable, build_routing, resolve_upstreams

POLICY = """
version: 1
providers:
  gpus:
    kind: openai
    endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1, http://10.0.0.3:8000/v1]
    server: vllm
    load: {load}
  frontier:
    kind: openai
    base_url: https://api.openai.com/v1
routes:
  chat:
    targets:
      - {{provider: gpus, model: llama}}
      - {{provider: frontier, model: gpt-4o-mini}}
"""


def three_replicas(load: str) -> RouteTable:
    """Route `chat`: the pool `gpus` (deployments 0–2, with `load` as its settings), then the frontier (3)."""
    text = textwrap.dedent(POLICY.format(load=load)).lstrip("\n")
    doc = parse_policy(text, "pools.yaml", {}).document
    return build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]
