"""Checks on one live answer: the signs of an intelligence brownout in a 200. Pure and cheap.

Each check is a function of what the request asked (`Asked`) and what came back (`Answer`, read by
gateway/quality/answer_read.py from a whole body or a stream), and each has a guard against the
ordinary answers that look like it:

- wrong script: the letters are mostly (by a strided sample) in a script that appears nowhere in the
  request. Latin is never judged (code, names and English belong anywhere), nor are short answers,
  and a Thai question answered in Thai is fine because Thai is in the request.
- empty: finished (`stop`) with no text, no refusal and no tool call, unless the request ends with an
  assistant message the answer only continues.
- repetition: the last ~2,000 characters of a long answer are mostly the same few word 4-grams (or,
  without spaces, character 8-grams) over and over.
- tool arguments: a tool call's arguments do not parse as JSON, or break the schema the request
  declared for that tool. An answer cut off by the client's own token limit is not judged.
- structured output: the text does not parse, or breaks the `response_format` / `text.format` /
  `output_config` schema the request declared (not judged when cut off by the token limit).

Schemas are compiled once each (keyed by their canonical JSON) and kept in a small cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from gateway.policy.answer_checks import AnswerChecks

# The bounded vocabulary of defects (a metric label).
WRONG_SCRIPT, EMPTY, REPETITION = "wrong_script", "empty", "repetition"
TOOL_ARGS_NOT_JSON, TOOL_ARGS_SCHEMA, STRUCTURED_OUTPUT = "tool_args_not_json", "tool_args_schema", "structured_output"
DEFECTS = (WRONG_SCRIPT, EMPTY, REPETITION, TOOL_ARGS_NOT_JSON, TOOL_ARGS_SCHEMA, STRUCTURED_OUTPUT)
# What another target may answer better at no cost to the client: never relayed while one can.
RESCUABLE = frozenset({EMPTY, TOOL_ARGS_NOT_JSON})

SAMPLE_CHARS = 256        # the wrong-script check looks at about this many characters, evenly strided
MIN_SCRIPT_LETTERS = 16   # fewer letters of a foreign script than this say nothing (a name, a quote)
LOOP_MIN_CHARS = 600      # shorter answers are never judged a loop
LOOP_TAIL_CHARS = 2000    # the part of a long answer the loop check reads
LOOP_DISTINCT = 0.25      # at most this share of distinct n-grams in the tail: a loop

# Letter ranges by script (the first and last codepoint). Latin is listed so that accented Latin counts
# as Latin, not as a foreign script. Han and kana are one family: Japanese mixes them freely.
_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "latin": ((0x00C0, 0x024F), (0x1E00, 0x1EFF)),
    "greek": ((0x0370, 0x03FF), (0x1F00, 0x1FFF)),
    "cyrillic": ((0x0400, 0x052F),),
    "armenian": ((0x0531, 0x058A),),
    "hebrew": ((0x0591, 0x05F4),),
    "arabic": ((0x0600, 0x06FF), (0x0750, 0x077F), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    "devanagari": ((0x0900, 0x097F),),
    "bengali": ((0x0980, 0x09FF),),
    "gurmukhi": ((0x0A00, 0x0A7F),),
    "gujarati": ((0x0A80, 0x0AFF),),
    "tamil": ((0x0B80, 0x0BFF),),
    "telugu": ((0x0C00, 0x0C7F),),
    "kannada": ((0x0C80, 0x0CFF),),
    "malayalam": ((0x0D00, 0x0D7F),),
    "sinhala": ((0x0D80, 0x0DFF),),
    "thai": ((0x0E00, 0x0E7F),),
    "lao": ((0x0E80, 0x0EFF),),
    "tibetan": ((0x0F00, 0x0FFF),),
    "myanmar": ((0x1000, 0x109F),),
    "georgian": ((0x10A0, 0x10FF),),
    "khmer": ((0x1780, 0x17FF),),
    "hangul": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF)),
    "han_kana": ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)),
}
# 16-codepoint blocks → script: one dict lookup per non-ASCII character of the sample.
_BLOCKS: dict[int, str] = {b: name for name, ranges in _RANGES.items() for lo, hi in ranges
                           for b in range(lo >> 4, (hi >> 4) + 1)}
_IN_SCRIPT = {name: re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in ranges) + "]")
              for name, ranges in _RANGES.items()}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_LETTERS = re.compile(r"[A-Za-z]")


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str | None      # as the wire carries them (OpenAI: a JSON string); None when already parsed
    parsed: Any = None         # Anthropic's `input`, an object already


@dataclass(slots=True)
class Answer:
    """What came back, read from any wire: its text, tool calls, and how it finished."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish: str = ""           # "stop", "length", "tool_calls", "refusal", "other" or "" (not known)
    acted: bool = False        # an output besides text and function calls (a hosted tool, a refusal)


class Asked:
    """What the request asked for, read lazily from its body (and the earlier turns it continues)."""

    __slots__ = ("body", "endpoint", "prior", "_tools")

    def __init__(self, body: Mapping[str, Any], endpoint: str, prior: Sequence[Any] = ()) -> None:
        self.body = body
        self.endpoint = endpoint
        self.prior = prior
        self._tools: dict[str, Any] | None = None

    def has_script(self, script: str) -> bool:
        """Does any text of the request (system prompt, messages, tools, earlier turns) hold this script?"""
        pattern = _IN_SCRIPT[script]
        return any(pattern.search(s) for s in _strings(self.body)) or \
            any(pattern.search(s) for s in _strings(self.prior))

    def tool_schema(self, name: str) -> Mapping[str, Any] | None:
        if self._tools is None:
            self._tools = {}
            for tool in self.body.get("tools") or ():
                if not isinstance(tool, Mapping):
                    continue
                inner = tool.get("function")
                fn: Mapping[str, Any] = inner if isinstance(inner, Mapping) else tool
                schema = fn.get("parameters") or fn.get("input_schema")
                if isinstance(fn.get("name"), str) and isinstance(schema, Mapping):
                    self._tools[fn["name"]] = schema
        return self._tools.get(name)

    def output_format(self) -> tuple[str, Mapping[str, Any] | None] | None:
        """("json_object", None) or ("json_schema", schema) when the request declared one, else None."""
        body = self.body
        if self.endpoint == "responses":
            text = body.get("text")
            fmt = text.get("format") if isinstance(text, Mapping) else None
            schema = fmt.get("schema") if isinstance(fmt, Mapping) else None
        elif self.endpoint == "messages":
            config = body.get("output_config") or body.get("output_format")
            fmt = config.get("format", config) if isinstance(config, Mapping) else None
            schema = fmt.get("schema") if isinstance(fmt, Mapping) else None
        else:
            fmt = body.get("response_format")
            inner = fmt.get("json_schema") if isinstance(fmt, Mapping) else None
            schema = inner.get("schema") if isinstance(inner, Mapping) else None
        kind = fmt.get("type") if isinstance(fmt, Mapping) else None
        if kind == "json_object":
            return "json_object", None
        if kind == "json_schema":
            return "json_schema", schema if isinstance(schema, Mapping) else None
        return None

    def continues_assistant(self) -> bool:
        """Does the request end with an assistant message (a prefill the answer only continues)?"""
        messages = self.body.get("messages") if self.endpoint != "responses" else None
        return isinstance(messages, list) and bool(messages) and isinstance(messages[-1], Mapping) \
            and messages[-1].get("role") == "assistant"


def _strings(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON value, walked without recursion (a client's body may nest deeply)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, Mapping):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


def dominant_script(text: str) -> str | None:
    """The non-Latin script most of the text's letters are in (by a strided sample), or None. Counted by
    regular expressions (C speed): the first foreign script the sample shows, against all its letters."""
    sample = text if len(text) <= SAMPLE_CHARS else text[:: len(text) // SAMPLE_CHARS + 1]
    if sample.isascii():
        return None      # most answers end here
    script = None
    for m in _NON_ASCII.finditer(sample):
        script = _BLOCKS.get(ord(m.group()) >> 4)
        if script is not None and script != "latin":
            break
    else:
        return None
    assert script is not None
    n = len(_IN_SCRIPT[script].findall(sample))
    if n < MIN_SCRIPT_LETTERS:
        return None
    letters = len(_ASCII_LETTERS.findall(sample)) + len(_NON_ASCII.findall(sample))
    return script if 2 * n >= letters else None


def wrong_script(asked: Asked, text: str) -> bool:
    script = dominant_script(text)
    return script is not None and not asked.has_script(script)


def looping(text: str) -> bool:
    """Is the end of a long answer one phrase over and over?"""
    if len(text) < LOOP_MIN_CHARS:
        return False
    tail = text[-LOOP_TAIL_CHARS:]
    words = tail.split()[1:]   # the first may be cut
    if len(words) >= 60:
        if len(set(words)) - 3 > LOOP_DISTINCT * (len(words) - 3):
            return False       # as many distinct words as that make at least as many distinct 4-grams
        grams: list[Any] = list(zip(words, words[1:], words[2:], words[3:]))
    else:   # a script written without spaces
        grams = [tail[i:i + 8] for i in range(0, len(tail) - 8, 3)]
    return len(set(grams)) <= LOOP_DISTINCT * len(grams)


# A client's schema is the client's: a regular expression in it (`pattern`, `patternProperties`) would
# run in the gateway's event loop, and one that backtracks catastrophically would stall every request.
_REGEX_KEYWORDS = (b'"pattern"', b'"patternProperties"')


@lru_cache(maxsize=256)
def _validator(canonical: bytes) -> Any:
    """A compiled validator for one schema (None when the schema is not valid, or holds regular expressions)."""
    from jsonschema import Draft202012Validator

    if any(k in canonical for k in _REGEX_KEYWORDS):
        return None
    schema = orjson.loads(canonical)
    try:
        Draft202012Validator.check_schema(schema)
        return Draft202012Validator(schema)
    except Exception:   # an invalid schema, or one too deep to compile: it judges nothing
        return None


def fits(value: Any, schema: Mapping[str, Any]) -> bool:
    """Does `value` fit `schema`? (A schema that is broken, or that holds regular expressions, says
    nothing: True.)"""
    try:
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
        return validator is None or bool(validator.is_valid(value))
    except Exception:   # a schema or a value too deep to walk: no judgement, never a failed request
        return True


_NOT_JSON = object()


def _parsed(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def not_json(calls: Sequence[ToolCall]) -> bool:
    """Are the arguments of one of these calls not JSON ("" stands for a tool without parameters)?"""
    return any(c.arguments is not None and c.arguments.strip() and _parsed(c.arguments) is _NOT_JSON for c in calls)


def tool_defect(asked: Asked, calls: Sequence[ToolCall]) -> str | None:
    for call in calls:
        if call.arguments is None:
            value = call.parsed
        else:
            value = _parsed(call.arguments) if call.arguments.strip() else {}   # "" : a tool without parameters
            if value is _NOT_JSON:
                return TOOL_ARGS_NOT_JSON
        schema = asked.tool_schema(call.name)
        if schema is not None and not fits(value, schema):
            return TOOL_ARGS_SCHEMA
    return None


def structured_defect(asked: Asked, text: str) -> bool:
    declared = asked.output_format()
    if declared is None:
        return False
    value = _parsed(text)
    if value is _NOT_JSON:
        return True
    schema = declared[1]
    return schema is not None and not fits(value, schema)


def text_defects(asked: Asked, text: str, checks: AnswerChecks) -> list[str]:
    """The checks that can judge text while it still flows: wrong script and repetition."""
    found = []
    if checks.wrong_script and wrong_script(asked, text):
        found.append(WRONG_SCRIPT)
    if checks.repetition and looping(text):
        found.append(REPETITION)
    return found


def defects(asked: Asked, answer: Answer, checks: AnswerChecks) -> list[str]:
    """Every defect of a finished answer (empty list: nothing wrong that these checks can see)."""
    if answer.finish == "refusal":
        return []
    cut = answer.finish == "length"     # the client's own token limit: a cut answer is no defect of form
    if not answer.text.strip() and not answer.tool_calls:
        if checks.empty and answer.finish == "stop" and not answer.acted and not asked.continues_assistant():
            return [EMPTY]
        return []
    found = text_defects(asked, answer.text, checks)
    if checks.tool_arguments and answer.tool_calls and not cut:
        defect = tool_defect(asked, answer.tool_calls)
        if defect is not None:
            found.append(defect)
    if checks.structured_output and answer.text and not answer.tool_calls and not cut \
            and structured_defect(asked, answer.text):
        found.append(STRUCTURED_OUTPUT)
    return found
