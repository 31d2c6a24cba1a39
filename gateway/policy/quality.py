"""Policy keys for quality canaries: what each deployment is asked, how often, and what it may cost."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from gateway.policy.closed import Closed

ItemName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class Expect(Closed):
    """The check an answer must pass: exactly one of these."""

    contains: Annotated[str, Field(min_length=1, max_length=1000)] | None = None   # case-insensitive
    regex: Annotated[str, Field(min_length=1, max_length=1000)] | None = None      # searched in the answer
    json_schema: dict[str, Any] | None = None    # the whole answer parses as JSON and validates
    tool_call: Annotated[str, Field(min_length=1, max_length=64)] | None = None    # a call to this tool, valid arguments

    @model_validator(mode="after")
    def one_check(self) -> Expect:
        given = [k for k in ("contains", "regex", "json_schema", "tool_call") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of contains, regex, json_schema and tool_call")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        if self.json_schema is not None:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(self.json_schema)
            except SchemaError as exc:
                raise ValueError(f"json_schema is not a valid JSON Schema: {exc.message}") from None
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("contains", "regex", "json_schema", "tool_call") if getattr(self, k) is not None)


class Message(Closed):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(min_length=1, max_length=20_000)]


class CanaryItem(Closed):
    name: ItemName
    messages: Annotated[list[Message], Field(min_length=1, max_length=20)]
    tools: Annotated[list[dict[str, Any]], Field(max_length=16)] | None = None   # OpenAI tool definitions
    expect: Expect

    @model_validator(mode="after")
    def tool_is_offered(self) -> CanaryItem:
        wanted = self.expect.tool_call
        if wanted is not None and wanted not in tool_names(self.tools or []):
            raise ValueError(f"expect.tool_call '{wanted}' is not one of the item's tools")
        return self


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    names = []
    for tool in tools:
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


class Canaries(Closed):
    """Each deployment answers the suite every `interval_s` (± `jitter`); its pass ratio is judged
    against its own baseline. Thresholds are pass ratios (0–1)."""

    enabled: bool = True
    interval_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    jitter: Annotated[float, Field(ge=0, le=0.5)] = 0.1               # ± this share of the interval
    budget_usd: Annotated[Decimal, Field(ge=0, le=Decimal(1_000_000))] = Decimal("1.00")   # per UTC day
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = 64
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0            # per item
    window_runs: Annotated[int, Field(ge=1, le=100)] = 3               # runs the recent pass ratio spans
    degrade_drop: Annotated[float, Field(gt=0, le=1)] = 0.25           # this far below baseline → degraded
    eject_below: Annotated[float, Field(ge=0, le=1)] = 0.5             # recent ratio below this → ejected
    recover_within: Annotated[float, Field(ge=0, le=1)] = 0.1          # a run this close to baseline → recovered
    items: Annotated[list[CanaryItem], Field(min_length=1, max_length=100)] | None = None   # None: the built-in suite

    @model_validator(mode="after")
    def thresholds_make_sense(self) -> Canaries:
        if self.recover_within >= self.degrade_drop:
            raise ValueError("recover_within must be smaller than degrade_drop (or it would flap)")
        if self.items is not None:
            names = [i.name for i in self.items]
            dup = next((n for n in names if names.count(n) > 1), None)
            if dup is not None:
                raise ValueError(f"item name '{dup}' is used twice")
        return self
