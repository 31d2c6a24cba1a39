"""The base of every policy section: unknown keys refused, frozen once loaded, and no input value
quoted in an error (a value may be a key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
