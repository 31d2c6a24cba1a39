"""Small value checks the simulated APIs build their request tables from, worded each API's way. Pure.

A check takes a value and its path in the body and returns the API's complaint, or None.
"""

from __future__ import annotations

from collections.abc import Callable
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


# Anthropic answers with pydantic's words: `messages.0.role: Input should be ...`.
PYDANTIC = Words(expected=lambda at, what: f"{at}: Input should be {what}",
                 extra=lambda at: f"{at}: Extra inputs are not permitted",
                 index=lambda at, i: f"{at}.{i}", field=lambda at, name: f"{at}.{name}")
# OpenAI: `Invalid type for 'messages[0].content': expected ...` and `Unrecognized request argument supplied: x`.
OPENAI = Words(expected=lambda at, what: f"Invalid value for '{at}': expected {what}.",
               extra=lambda at: f"Unrecognized request argument supplied: {at}",
               index=lambda at, i: f"{at}[{i}]", field=lambda at, name: f"{at}.{name}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def any_value(value: Any, at: str) -> str | None:
    return None


def nullable(check: Check) -> Check:
    return lambda value, at: None if value is None else check(value, at)


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

    def list_of(self, item: Check, min_items: int = 0) -> Check:
        def check(value: Any, at: str) -> str | None:
            if not isinstance(value, list) or len(value) < min_items:
                return self.words.expected(at, "a valid list" + (f" of at least {min_items}" if min_items else ""))
            for i, v in enumerate(value):
                found = item(v, self.words.index(at, i))
                if found:
                    return found
            return None
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

    def either(self, what: str, *checks: Check) -> Check:
        """Passes when any of `checks` passes."""
        def check(value: Any, at: str) -> str | None:
            return None if any(c(value, at) is None for c in checks) else self.words.expected(at, what)
        return check
