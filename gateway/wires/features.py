"""What a crossing does with each feature a client sends: mapped, dropped and said so, or refused.

When a client's API and its target's wire differ, every feature the client sends takes one of three
paths, and this table is where they are written down (the README's compatibility table is this one):

- *mapped*: carried over to the target's equivalent;
- *dropped*: the target has no equivalent and the answer is still worth having; the answer names
  the feature in `x-recloser-dropped` and `recloser_dropped_features_total{route,feature}` counts it;
- *refused*: the target cannot serve the request meaningfully; that target is skipped (the next one
  may speak the client's API) and only when no target can take it does the client get a 400.

Feature names are a fixed set, so the metric's `feature` label stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["mapped", "dropped", "refused"]

# The names a crossing may report as dropped: the `feature` label's whole range.
THINKING = "thinking"                      # thinking settings and thinking blocks
EFFORT = "effort"                          # reasoning / output effort
REASONING = "reasoning"                    # reasoning items and their encrypted content
WEB_SEARCH = "web_search"                  # a hosted web search tool
HOSTED_TOOLS = "hosted_tools"              # other tools the origin provider runs on its side
CACHE_CONTROL = "cache_control"            # Anthropic prompt-cache marks
CONTEXT_MANAGEMENT = "context_management"  # Anthropic's server-side context edits
PROMPT_CACHE_KEY = "prompt_cache_key"      # OpenAI's prompt-cache routing key
TOP_K = "top_k"
CITATIONS = "citations"
SERVICE_TIER = "service_tier"
INCLUDE = "include"                        # extra output OpenAI adds on request (`include`)
VERBOSITY = "verbosity"
OTHER = "other_fields"                     # request fields newer than the crossing's table
DROPPABLE: frozenset[str] = frozenset({
    THINKING, EFFORT, REASONING, WEB_SEARCH, HOSTED_TOOLS, CACHE_CONTROL, CONTEXT_MANAGEMENT,
    PROMPT_CACHE_KEY, TOP_K, CITATIONS, SERVICE_TIER, INCLUDE, VERBOSITY, OTHER,
})

DROPPED_HEADER = "x-recloser-dropped"


@dataclass(frozen=True, slots=True)
class Row:
    crossing: str      # "responses → chat", "messages → chat", "chat → messages"
    feature: str       # what the client sends
    action: Action
    how: str           # what becomes of it


def drop(dropped: list[str] | None, feature: str) -> None:
    """Notes that `feature` did not cross (once per request; a no-op when nobody is listening)."""
    assert feature in DROPPABLE, feature
    if dropped is not None and feature not in dropped:
        dropped.append(feature)
