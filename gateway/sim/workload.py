"""Traffic like a fleet of coding agents beside a chat app, for simulated GPU pools. Seeded, no I/O.

Agents (Claude Code, Codex) open every session with the same long system prompt and tool list, then
grow the conversation by a tool call and its result per turn: each request repeats the previous one
and adds to it. Beside them, short chats: a small system prompt and one question each. Words are
distinct per session and turn (`s12t3w40`), so two requests share exactly what they are meant to
share, as the simulated server's prefix cache sees it (gateway/sim/gpu.py counts words as tokens).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

CHAT_SYSTEM = "You are a helpful assistant. Answer briefly."


@dataclass(frozen=True)
class Shape:
    agents: int = 2                 # agent products, each with its own system prompt and tools
    system_words: int = 1200
    tools: int = 12
    tool_words: int = 60            # each tool's description
    sessions: int = 24              # agent sessions open at once
    turns: int = 8                  # requests per session before it ends and another opens
    task_words: int = 40
    result_words: int = 120         # each tool result
    chat_share: float = 0.3         # share of requests that are short chats
    chat_words: int = 30
    reply_tokens: int = 10


@dataclass
class Session:
    agent: int
    number: int
    messages: list[dict[str, Any]] = field(default_factory=list)


def _words(tag: str, n: int) -> str:
    return " ".join(f"{tag}w{i}" for i in range(n))


class AgentWorkload:
    """The next request of a random open session, or a short chat; every instance with the same seed
    sends the same requests in the same order."""

    def __init__(self, shape: Shape = Shape(), seed: int = 7, model: str = "llama", stream: bool = True) -> None:
        self.shape = shape
        self.model = model
        self.stream = stream
        self.rng = random.Random(seed)
        self.opened = 0
        self.chats = 0
        self.systems = [_words(f"a{a}sys", shape.system_words) for a in range(shape.agents)]
        self.tools = [[{"type": "function", "function": {
            "name": f"tool{a}_{t}", "description": _words(f"a{a}tool{t}", shape.tool_words),
            "parameters": {"type": "object", "properties": {"arg": {"type": "string"}}}}}
            for t in range(shape.tools)] for a in range(shape.agents)]
        self.sessions = [self._open() for _ in range(shape.sessions)]

    def _open(self) -> Session:
        self.opened += 1
        agent = self.rng.randrange(self.shape.agents)
        s = Session(agent, self.opened)
        s.messages = [{"role": "system", "content": self.systems[agent]},
                      {"role": "user", "content": _words(f"s{s.number}task", self.shape.task_words)}]
        return s

    def next(self) -> dict[str, Any]:
        if self.rng.random() < self.shape.chat_share:
            return self._chat()
        i = self.rng.randrange(len(self.sessions))
        s = self.sessions[i]
        turn = sum(1 for m in s.messages if m["role"] == "tool")
        if turn >= self.shape.turns - 1:
            s = self.sessions[i] = self._open()
            turn = 0
        body = self._body(list(s.messages), self.tools[s.agent])
        call = f"call_{s.number}_{turn}"
        s.messages += [
            {"role": "assistant", "content": None, "tool_calls": [{"id": call, "type": "function", "function": {
                "name": f"tool{s.agent}_{turn % self.shape.tools}", "arguments": "{\"arg\": \"x\"}"}}]},
            {"role": "tool", "tool_call_id": call, "content": _words(f"s{s.number}t{turn}", self.shape.result_words)}]
        return body

    def _chat(self) -> dict[str, Any]:
        self.chats += 1
        return self._body([{"role": "system", "content": CHAT_SYSTEM},
                           {"role": "user", "content": _words(f"c{self.chats}q", self.shape.chat_words)}], None)

    def _body(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": self.shape.reply_tokens}
        if self.stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        if tools is not None:
            body["tools"] = tools
        return body
