"""Policy keys for the checks on live answers (`answer_checks:` at the top, or per route).

Every answer the gateway relays is checked for the signs of an intelligence brownout: letters in a
script the conversation never used, nothing at all, a degenerate loop, tool arguments that are not
JSON or do not fit the declared schema, structured output that does not fit its schema. Defects are
counted per deployment; a deployment whose defect rate jumps above its own usual rate and its
peers' is degraded, then ejected. All on by default; each check can be turned off per route.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from gateway.policy.closed import Closed


Rate = Annotated[float, Field(gt=0, le=1)]


class AnswerChecks(Closed):
    enabled: bool = True                      # false: no answer of the route is checked or counted
    wrong_script: bool = True                 # letters mostly in a script the request never used
    empty: bool = True                        # finished with no text and no tool call
    repetition: bool = True                   # the end of a long answer is one phrase over and over
    tool_arguments: bool = True               # a tool call's arguments are not JSON, or break the tool's schema
    structured_output: bool = True            # the answer breaks the response_format / text.format / output_config
    # A non-stream answer that is empty or whose tool arguments are not JSON is retried on the next
    # target (within the retry budget) instead of being relayed; false: relay it as it came.
    rescue: bool = True
    # The rule that turns defects into a brownout: of a deployment's last `recent_answers` answers
    # (those within `window_s`), at least `min_answers`, and a defect rate at or above `degrade_rate`
    # (degraded) or `eject_rate` (ejected) that is also `margin` above the deployment's own usual rate
    # and above its peers' in the route.
    recent_answers: Annotated[int, Field(ge=1, le=10_000)] = 20
    window_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    min_answers: Annotated[int, Field(ge=1, le=100_000)] = 10
    degrade_rate: Rate = 0.2
    eject_rate: Rate = 0.5
    margin: Annotated[float, Field(ge=0, lt=1)] = 0.15
    recover_answers: Annotated[int, Field(ge=1, le=1000)] = 3   # clean answers in a row that end an ejection

    @model_validator(mode="after")
    def rates_in_order(self) -> AnswerChecks:
        if self.eject_rate < self.degrade_rate:
            raise ValueError("eject_rate must not be below degrade_rate")
        if self.min_answers > self.recent_answers:
            raise ValueError("min_answers must not be more than recent_answers (the rule could never count that many)")
        return self
