"""The built-in canary suite: cheap items any capable chat model passes at temperature 0.

Arithmetic, instruction following, strict JSON output, a tool call and refusal-free factual answers.
Each item costs a few dozen tokens; answers are checked strictly, so a model that rambles, refuses
or gets the fact wrong fails the item.
"""

from __future__ import annotations

from typing import Any

from gateway.policy.quality import CanaryItem

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False},
    },
}


def _ask(name: str, prompt: str, expect: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> CanaryItem:
    return CanaryItem.model_validate({"name": name, "messages": [{"role": "user", "content": prompt}],
                                      "tools": tools, "expect": expect})


DEFAULT_SUITE: tuple[CanaryItem, ...] = (
    _ask("add", "What is 17 + 25? Reply with the number only.", {"regex": r"^\s*42\s*\.?\s*$"}),
    _ask("multiply", "What is 9 * 8? Reply with the number only.", {"regex": r"^\s*72\s*\.?\s*$"}),
    _ask("subtract", "What is 100 - 37? Reply with the number only.", {"regex": r"^\s*63\s*\.?\s*$"}),
    _ask("echo-word", "Reply with the single word 'pineapple' in lower case and nothing else.",
         {"regex": r"^\s*pineapple\s*\.?\s*$"}),
    _ask("upper-case", "Write the word 'recloser' in capital letters and nothing else.",
         {"regex": r"^\s*RECLOSER\s*\.?\s*$"}),
    _ask("json-object", 'Return only a JSON object with the keys "city" (the string "Paris") and "country" '
                        '(the string "France"). No prose, no code fence.',
         {"json_schema": {"type": "object", "required": ["city", "country"],
                          "properties": {"city": {"const": "Paris"}, "country": {"const": "France"}}}}),
    _ask("json-primes", "Return only a JSON array of the first three prime numbers. No prose, no code fence.",
         {"json_schema": {"type": "array", "prefixItems": [{"const": 2}, {"const": 3}, {"const": 5}],
                          "minItems": 3, "maxItems": 3}}),
    _ask("tool-call", "What is the weather in Oslo right now? Use the tool.", {"tool_call": "get_weather"},
         tools=[WEATHER_TOOL]),
    _ask("capital", "What is the capital of France? Answer in one word.", {"regex": r"(?i)^\W*paris\W*$"}),
    _ask("leap-year", "How many days are there in a leap year? Reply with the number only.",
         {"regex": r"^\s*366\s*\.?\s*$"}),
    _ask("gold", "What is the chemical symbol for gold? Reply with the symbol only.", {"regex": r"^\s*Au\s*\.?\s*$"}),
)
