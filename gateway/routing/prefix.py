"""What prefix each replica of a pool may hold in its KV cache: the gateway's own picture of it. Pure.

A request's prompt is laid out in a canonical order — the system prompt first (Messages' `system`,
Responses' `instructions`, leading system or developer turns), then the tool list, then the turns
one by one — and cut into chunks of `CHUNK_BYTES`. Each full chunk is named by a hash of itself and
every chunk before it (as vLLM names its KV blocks), so two requests share a chunk's name only when
they share everything up to its end. The next turn of a conversation repeats the last one's prompt
and adds to it, so it shares all of its chunks; a session that opens with the same system prompt and
tools as another shares theirs.

Each replica keeps the names of the chunks the gateway sent it, least recently used first, at most as
many as its cache holds (`cache_tokens`, at `BYTES_PER_TOKEN`): an approximation, since the server
evicts by its own measure, but one that needs no help from the server. A chunk is touched tail
first, so a prompt's head is evicted last, as the servers do: what survives is a prefix.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

CHUNK_BYTES = 256           # about 64 tokens: vLLM's and SGLang's blocks are 16–64 tokens
BYTES_PER_TOKEN = 4         # of English text and JSON, as BPE tokenisers cut it
_SYSTEM_ROLES = ("system", "developer")
_TURN = b"\x1e"


def _part(part: Any) -> Any:
    # cache_control marks move from block to block as a conversation grows (Claude Code marks its
    # latest turn): they are not part of the prompt the model reads.
    if isinstance(part, dict) and "cache_control" in part:
        return {k: v for k, v in part.items() if k != "cache_control"}
    return part


def _turn(turn: Any) -> bytes:
    if not isinstance(turn, Mapping):
        return orjson.dumps(turn) + _TURN
    content = turn.get("content")
    if isinstance(content, list):
        turn = {**turn, "content": [_part(p) for p in content]}
    return orjson.dumps(turn) + _TURN


def _system(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass") + _TURN
    if isinstance(value, list):
        return orjson.dumps([_part(p) for p in value]) + _TURN
    return orjson.dumps(value) + _TURN


def prompt_bytes(body: Mapping[str, Any]) -> bytes:
    """The request's prompt in canonical order: system prompt, tools, turns."""
    system: list[bytes] = []
    for field in ("system", "instructions"):
        if body.get(field):
            system.append(_system(body[field]))
    turns = body.get("messages")
    if turns is None:
        turns = body.get("input")
    rest: list[bytes] = []
    if isinstance(turns, str):
        rest.append(turns.encode("utf-8", "surrogatepass"))
    elif isinstance(turns, list):
        leading = True
        for turn in turns:
            if leading and isinstance(turn, Mapping) and turn.get("role") in _SYSTEM_ROLES:
                system.append(_turn(turn))
                continue
            leading = False
            rest.append(_turn(turn))
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        rest.append(prompt.encode("utf-8", "surrogatepass"))
    tools = body.get("tools")
    if tools:
        system.append(orjson.dumps([_part(t) for t in tools]) if isinstance(tools, list) else orjson.dumps(tools))
    return b"".join(system) + _TURN + b"".join(rest)


def chunk_names(text: bytes) -> tuple[int, ...]:
    """The names of `text`'s full chunks: each a CRC-32 of the text up to its end, with its position."""
    view = memoryview(text)
    names: list[int] = []
    crc = 0
    for n, start in enumerate(range(0, len(text) - CHUNK_BYTES + 1, CHUNK_BYTES)):
        crc = zlib.crc32(view[start:start + CHUNK_BYTES], crc)
        names.append(crc | n << 32)
    return tuple(names)


def prompt_chunks(body: Mapping[str, Any]) -> tuple[int, ...]:
    return chunk_names(prompt_bytes(body))


def chunks_held(cache_tokens: int) -> int:
    """How many chunks a replica whose prefix cache holds `cache_tokens` tokens has room for."""
    return max(1, cache_tokens * BYTES_PER_TOKEN // CHUNK_BYTES)


class PrefixPicture:
    """The chunks the gateway sent one replica, least recently used first, at most `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._chunks: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chunks)

    def match(self, chunks: Sequence[int]) -> int:
        """How many of `chunks`, from the first, the replica holds. A binary search: what is held of a
        prompt is a prefix of it (heads are evicted last), and a long agent prompt has hundreds of chunks."""
        held = self._chunks
        lo, hi = 0, len(chunks)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if chunks[mid - 1] in held:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def sent(self, chunks: Sequence[int]) -> None:
        """The replica computes (or finds) every chunk of a request sent to it: now its most recent."""
        self._touch(reversed(chunks))
        while len(self._chunks) > self.capacity:
            self._chunks.popitem(last=False)

    def _touch(self, chunks: Iterable[int]) -> None:
        held = self._chunks
        for chunk in chunks:
            held[chunk] = None
            held.move_to_end(chunk)
