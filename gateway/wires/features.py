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
CONTEXT_MANAGEMENT = "context_management"  # Anthropic's server-side context edits
PROMPT_CACHE_KEY = "prompt_cache_key"      # OpenAI's prompt-cache routing key
TOP_K = "top_k"
SERVICE_TIER = "service_tier"
INCLUDE = "include"                        # extra output OpenAI adds on request (`include`)
VERBOSITY = "verbosity"
OTHER = "other_fields"                     # request fields newer than the crossing's table
DROPPABLE: frozenset[str] = frozenset({
    THINKING, EFFORT, REASONING, WEB_SEARCH, HOSTED_TOOLS, CONTEXT_MANAGEMENT, PROMPT_CACHE_KEY, TOP_K,
    SERVICE_TIER, INCLUDE, VERBOSITY, OTHER,
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


R, M, C = "responses → chat", "messages → chat", "chat → messages"
# Every feature a crossing meets, and what becomes of it. The README's compatibility table is this one
# (tests/unit/test_crossing_table.py holds the two together).
TABLE: tuple[Row, ...] = (
    Row(R, "instructions; system and developer messages", "mapped", "system messages, in place"),
    Row(R, "function tools, calls and outputs", "mapped", "chat function tools and tool messages"),
    Row(R, "namespace tools", "mapped", "flattened to `<namespace>__<name>`; calls named back with their namespace"),
    Row(R, "custom (freeform) tools", "mapped", "a function taking one string `input`; calls come back as custom tool calls"),
    Row(R, "item_reference", "mapped", "resolved from the items the gateway kept; an unknown id makes the target unfit"),
    Row(R, "previous_response_id", "mapped", "the kept chain, expanded into messages"),
    Row(R, "prompt_cache_key, safety_identifier, service_tier, user", "mapped", "the chat fields of the same name"),
    Row(R, "reasoning.effort, text.verbosity", "mapped", "reasoning_effort, verbosity"),
    Row(R, "text.format", "mapped", "response_format"),
    Row(R, "store, metadata, client_metadata, truncation", "mapped", "echoed in the Response, not sent"),
    Row(R, "web_search tool", "dropped", WEB_SEARCH),
    Row(R, "other hosted tools (file_search, code_interpreter, mcp, …) and their items", "dropped", HOSTED_TOOLS),
    Row(R, "reasoning items, reasoning.summary, include reasoning.encrypted_content", "dropped", REASONING),
    Row(R, "compaction items", "dropped", REASONING),
    Row(R, "other include values", "dropped", INCLUDE),
    Row(R, "fields and item types newer than this table", "dropped", OTHER),
    Row(R, "background, prompt, conversation", "refused", "no chat equivalent: the target is skipped"),
    Row(R, "input_file parts", "refused", "a file the target cannot read: the target is skipped"),
    Row(M, "system, and system turns inside messages", "mapped", "system messages, in place"),
    Row(M, "text, image, tool_use, tool_result (text and images)", "mapped",
        "chat parts, tool calls, tool messages (a result's images follow as the user's)"),
    Row(M, "search_result blocks, plain-text documents", "mapped", "text"),
    Row(M, "custom tools, tool_choice, disable_parallel_tool_use", "mapped", "function tools, tool_choice, parallel_tool_calls"),
    Row(M, "stop_sequences, metadata.user_id, output_config.format", "mapped", "stop, user, response_format"),
    Row(M, "cache_control marks", "mapped", "left out: chat servers cache prefixes on their own"),
    Row(M, "thinking settings and thinking blocks", "dropped", THINKING),
    Row(M, "output_config.effort", "dropped", EFFORT),
    Row(M, "context_management", "dropped", CONTEXT_MANAGEMENT),
    Row(M, "top_k", "dropped", TOP_K),
    Row(M, "service_tier", "dropped", SERVICE_TIER),
    Row(M, "server tools (web_search_*)", "dropped", WEB_SEARCH),
    Row(M, "other server tools, container, mcp_servers and their result blocks", "dropped", HOSTED_TOOLS),
    Row(M, "fields and block types newer than this table", "dropped", OTHER),
    Row(M, "PDF and file documents", "refused", "a file the target cannot read: the target is skipped"),
    Row(C, "system and developer messages anywhere", "mapped", "the top-level system, in order"),
    Row(C, "tools, tool calls, tool messages, tool_choice, parallel_tool_calls", "mapped",
        "tools, tool_use and tool_result blocks, tool_choice, disable_parallel_tool_use"),
    Row(C, "response_format json_object / json_schema", "mapped", "a forced answer tool"),
    Row(C, "stop, user, max_tokens", "mapped", "stop_sequences, metadata.user_id, max_tokens"),
    Row(C, "metadata, store, safety_identifier", "mapped", "left out: the origin's own bookkeeping"),
    Row(C, "prompt_cache_key, prompt_cache_retention", "dropped", PROMPT_CACHE_KEY),
    Row(C, "reasoning_effort", "dropped", EFFORT),
    Row(C, "verbosity", "dropped", VERBOSITY),
    Row(C, "web_search_options", "dropped", WEB_SEARCH),
    Row(C, "service_tier", "dropped", SERVICE_TIER),
    Row(C, "fields newer than this table", "dropped", OTHER),
    Row(C, "n > 1, seed, logprobs, penalties, logit_bias, audio", "refused",
        "cannot be honoured: the target is skipped"),
)


def markdown() -> str:
    """The table as the README shows it."""
    lines = ["| crossing | what the client sends | what the target gets |", "| --- | --- | --- |"]
    for row in TABLE:
        how = f"dropped, named `{row.how}`" if row.action == "dropped" else \
            f"refused ({row.how})" if row.action == "refused" else row.how
        lines.append(f"| {row.crossing} | {row.feature} | {how} |")
    return "\n".join(lines)
