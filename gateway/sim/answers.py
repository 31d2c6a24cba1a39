"""What a simulated model answers to small tasks, competently or, in dumb mode, fluently and wrong. Pure.

The simulator is no language model: it does sums, follows "reply with the word …" and "the key …
(the string …)" instructions, and knows a handful of facts, enough for quality canaries (the
built-in suite among them) to pass against a healthy simulator and to fail against a dumb one.
Any other prompt gets None: the caller answers with its usual filler words.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from gateway.core.content import text_of
from gateway.sim import replies

_SUM = re.compile(r"what is (-?\d+)\s*(\+|-|\*|x|plus|minus|times)\s*(-?\d+)", re.IGNORECASE)
_WORD = re.compile(r"the (?:single )?word '([^']+)'", re.IGNORECASE)
_STRING_KEY = re.compile(r'"(\w+)" \(the string "([^"]*)"\)')
# (a fragment of the question, the right answer, a fluent wrong one)
FACTS: tuple[tuple[str, str, str], ...] = (
    ("capital of france", "Paris", "The capital of France is Lyon."),
    ("days are there in a leap year", "366", "A leap year has 365 days."),
    ("chemical symbol for gold", "Au", "The symbol for gold is Ag."),
    ("first three prime numbers", "[2, 3, 5]", "Sure! The first three primes are [1, 2, 3]."),
)
# Fluent Thai, whatever the question: what a decoding bug in the wrong script looks like.
THAI_FILLER = ("นี่คือ คำตอบ ที่ ชัดเจน และ ครบถ้วน สำหรับ คำถาม ของ คุณ โดย อธิบาย ทีละ ขั้นตอน "
               "อย่าง ละเอียด และ ระมัดระวัง").split()
LOOP_WORD = "the"
LOOP_LIMIT = 1024    # a loop with no max_tokens runs to this many words
DUMB_FILLER = ("Certainly! Here is a clear, confident and thoughtful answer to your question, covering every "
               "detail you could possibly need, explained step by step with great care.").split()


def last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


def _sum(a: int, op: str, b: int) -> int:
    op = op.lower()
    if op in ("+", "plus"):
        return a + b
    if op in ("-", "minus"):
        return a - b
    return a * b


def answer(messages: Any, dumb: bool) -> str | None:
    """The reply text to the last user message, or None when it is no task the simulator knows."""
    prompt = last_user_text(messages)
    if not prompt:
        return None
    m = _SUM.search(prompt)
    if m:
        result = _sum(int(m.group(1)), m.group(2), int(m.group(3)))
        return f"The answer is {result + 1}." if dumb else str(result)
    lowered = prompt.lower()
    for fragment, right, wrong in FACTS:
        if fragment in lowered:
            return wrong if dumb else right
    pairs = _STRING_KEY.findall(prompt)
    if pairs and "json" in lowered:
        if dumb:
            return "Here is the JSON you asked for: {" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        return orjson.dumps(dict(pairs)).decode()
    m = _WORD.search(prompt)
    if m:
        word = m.group(1)
        if dumb:
            return f"Sure! Here it is: {word.capitalize()}."
        return word.upper() if "capital letters" in lowered else word
    return None


def _limited(words: list[str], limit: int | None) -> tuple[list[str], str]:
    n = len(words) if limit is None else max(0, min(len(words), limit))
    return words[:n], ("length" if n < len(words) else "stop")


def broken_words(broken: str, reply_tokens: int, limit: int | None) -> tuple[list[str], str]:
    """The words of a broken answer (gateway.sim.faults.Broken) and its finish reason."""
    if broken == "empty":
        return [], "stop"
    if broken == "loop":   # to the token limit, as a degenerate model does
        return [LOOP_WORD] * min(limit or LOOP_LIMIT, 4 * LOOP_LIMIT), "length"
    return _limited((THAI_FILLER * (reply_tokens // len(THAI_FILLER) + 1))[:max(reply_tokens, 2 * len(THAI_FILLER))],
                    limit)


def reply_words(name: str, reply_tokens: int, limit: int | None, messages: Any, dumb: bool,
                broken: str | None = None) -> tuple[list[str], str]:
    """The reply's words and its finish reason: the task's answer when there is one, else filler
    (the sim's name, then t1, t2 …; in dumb mode fluent nonsense of the same length; broken: see
    broken_words)."""
    if broken in ("wrong_script", "empty", "loop"):
        return broken_words(broken, reply_tokens, limit)
    text = answer(messages, dumb)
    if text is not None:
        return _limited(text.split(" "), limit)
    if not dumb:
        return replies.reply_words(name, reply_tokens, limit)
    return _limited((DUMB_FILLER * (reply_tokens // len(DUMB_FILLER) + 1))[:reply_tokens], limit)


def tool_arguments_text(arguments: dict[str, Any], dumb: bool) -> str:
    """A tool call's arguments as JSON; in dumb mode cut off mid-object, as a broken model would."""
    text = orjson.dumps(arguments).decode()
    return text[: max(1, len(text) - 2)] if dumb else text
