"""Small value checks the simulated APIs build their request tables from, worded each API's way. Pure.

A check takes a value and its path in the body and returns the API's complaint, or None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any, str], str | None]


@dataclass(frozen=True, slots=True)
class Words:
    """How one API words a complaint and names a place in the body."""

    expected: Callable[[str, str], str]     # (path, what was expected) → message
    extra: Callable[[str], str]             # path of a field it does not know → message
    index: Callable[[str, int], str]        # path of a list's item
    field: Callable[[str, str], str]        # path of an object's field
    unsupported: Callable[[str, Any, Iterable[str]], str]   # (path, value given, values it takes) → message


# Anthropic answers with pydantic's words: `messages.0.role: Input should be ...`.
PYDANTIC = Words(expected=lambda at, what: f"{at}: Input should be {what}",
                 extra=lambda at: f"{at}: Extra inputs are not permitted",
                 index=lambda at, i: f"{at}.{i}", field=lambda at, name: f"{at}.{name}",
                 unsupported=lambda at, value, tags: (f"{at}: Input tag '{value}' does not match any of the expected "
                                                      f"tags: {sorted(tags)}"))


def _openai_unsupported(at: str, value: Any, supported: Iterable[str]) -> str:
    # Chat completions does not say where the value stood; the Responses API adds it (see its WORDS).
    return f"Invalid value: '{value}'. Supported values are: {', '.join(repr(v) for v in supported)}."


# OpenAI: `Invalid type for 'messages[0].content': expected ...` and `Unrecognized request argument supplied: x`.
OPENAI = Words(expected=lambda at, what: f"Invalid value for '{at}': expected {what}.",
               extra=lambda at: f"Unrecognized request argument supplied: {at}",
               index=lambda at, i: f"{at}[{i}]", field=lambda at, name: f"{at}.{name}",
               unsupported=_openai_unsupported)


# The reasoning efforts OpenAI takes, on chat completions and the Responses API alike.
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def any_value(value: Any, at: str) -> str | None:
    return None


def nullable(check: Check) -> Check:
    return lambda value, at: None if value is None else check(value, at)


def openai_name(longest: int) -> Check:
    """A name OpenAI calls a tool or function by: letters, digits, `_` and `-`, 1 to `longest` of them.

    The refusal quotes the pattern without its length, as OpenAI's does, whatever `longest` is.
    """
    pattern = re.compile(rf"^[a-zA-Z0-9_-]{{1,{longest}}}$")

    def check(value: Any, at: str) -> str | None:
        if isinstance(value, str) and pattern.match(value):
            return None
        return (f"Invalid '{at}': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.")
    return check


class Kit:
    """The primitive checks, worded as `words` says."""

    def __init__(self, words: Words) -> None:
        self.words = words

    def kind(self, what: str, test: Callable[[Any], bool]) -> Check:
        return lambda value, at: None if test(value) else self.words.expected(at, what)

    @property
    def string(self) -> Check:
        return self.kind("a valid string", lambda v: isinstance(v, str))

    @property
    def boolean(self) -> Check:
        return self.kind("a valid boolean", lambda v: isinstance(v, bool))

    def integer(self, minimum: int | None = None, maximum: int | None = None) -> Check:
        def test(v: Any) -> bool:
            return is_int(v) and (minimum is None or v >= minimum) and (maximum is None or v <= maximum)
        bounds = "".join([f" >= {minimum}" if minimum is not None else "",
                          f" <= {maximum}" if maximum is not None else ""])
        return self.kind(f"an integer{bounds}", test)

    def number(self, minimum: float | None = None, maximum: float | None = None) -> Check:
        def test(v: Any) -> bool:
            return is_number(v) and (minimum is None or v >= minimum) and (maximum is None or v <= maximum)
        bounds = "".join([f" >= {minimum}" if minimum is not None else "",
                          f" <= {maximum}" if maximum is not None else ""])
        return self.kind(f"a number{bounds}", test)

    def one_of(self, *values: Any) -> Check:
        return self.kind(" or ".join(repr(v) for v in values), lambda v: v in values)

    def _items(self, item: Check, values: list[Any], at: str) -> str | None:
        """The first complaint `item` has about any of `values`, placed at its index."""
        for i, v in enumerate(values):
            found = item(v, self.words.index(at, i))
            if found:
                return found
        return None

    def list_of(self, item: Check, min_items: int = 0) -> Check:
        def check(value: Any, at: str) -> str | None:
            if not isinstance(value, list) or len(value) < min_items:
                return self.words.expected(at, "a valid list" + (f" of at least {min_items}" if min_items else ""))
            return self._items(item, value, at)
        return check

    def string_or_list(self, item: Check, what: str) -> Check:
        """A string, or a list whose every item passes `item`; anything else is refused as not `what`.

        Content and input take either form; the API names the pair its own way, hence `what`.
        """
        def check(value: Any, at: str) -> str | None:
            if isinstance(value, str):
                return None
            if not isinstance(value, list):
                return self.words.expected(at, what)
            return self._items(item, value, at)
        return check

    def typed(self, table: dict[str, Check], default: str | None = None) -> Check:
        """An object whose `type` (`default` when it has none) says which check applies; unknown types are refused."""
        def check(value: Any, at: str) -> str | None:
            if not isinstance(value, dict):
                return self.words.expected(at, "an object")
            kind = value.get("type", default)
            inner = table.get(kind) if isinstance(kind, str) else None
            if inner is None:
                return self.words.unsupported(self.words.field(at, "type"), kind, table)
            return inner(value, at)
        return check

    def obj(self, fields: dict[str, Check] | None) -> Check:
        """An object; with `fields`, only those fields, each checked (None: any fields)."""
        def check(value: Any, at: str) -> str | None:
            if not isinstance(value, dict):
                return self.words.expected(at, "an object")
            for name, v in value.items():
                if fields is None:
                    continue
                field = fields.get(name)
                if field is None:
                    return self.words.extra(self.words.field(at, name))
                found = field(v, self.words.field(at, name))
                if found:
                    return found
            return None
        return check

    def top_level(self, fields: dict[str, Check], body: dict[str, Any], allow_unknown: bool = False) -> str | None:
        """The first complaint about a body's top-level fields; names `fields` lacks are refused unless `allow_unknown`.

        Top-level names stand alone in the API's words (`'temperature'`, not `'.temperature'`), so this is not `obj`.
        """
        for name, value in body.items():
            check = fields.get(name)
            if check is None:
                if allow_unknown:
                    continue
                return self.words.extra(name)
            found = check(value, name)
            if found:
                return found
        return None

    def either(self, what: str, *checks: Check) -> Check:
        """Passes when any of `checks` passes."""
        def check(value: Any, at: str) -> str | None:
            return None if any(c(value, at) is None for c in checks) else self.words.expected(at, what)
        return check
