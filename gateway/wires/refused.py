"""A request field one wire has and the other cannot express: refused with a 400, never dropped silently."""

from __future__ import annotations


class Refused(ValueError):
    """The request cannot be translated for this target; `param` names the field, like OpenAI's errors."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
