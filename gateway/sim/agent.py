"""Agent mode: what a simulated model does for a coding agent (Codex CLI, Claude Code). Pure.

Agent clients offer a dozen tools on every turn, so calling the first one (the plain sim's habit)
would send them anywhere. In agent mode the sim calls a tool only when asked to, in words a test
can write:

- the last user text has a line `run: <command>` and a shell tool is offered (`exec_command` with
  `cmd`, Codex; `Bash` with `command`, Claude Code; `shell` with `command`, a string or an argv
  array as its schema says; in that order of preference): the reply calls it with the command;
- it has a line `read: <path>` and a `Read` tool (`file_path`) is offered: the reply calls it;
- the latest turn is a tool's result: the reply is text, `<word> The tool said: <output>`;
- anything else: no decision, the wire answers with its usual text (never a tool call).

A tool may be offered flattened (`<prefix>__exec_command`) or inside a Responses `namespace` tool;
the call names it as it was offered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# (tool name, the property that takes the command), in order of preference.
SHELL_TOOLS: tuple[tuple[str, str], ...] = (("exec_command", "cmd"), ("Bash", "command"), ("shell", "command"))
READ_TOOLS: tuple[tuple[str, str], ...] = (("Read", "file_path"),)
OUTPUT_CHARS = 300
_RUN = re.compile(r"^\s*run:\s*(\S.*?)\s*$", re.MULTILINE)
_READ = re.compile(r"^\s*read:\s*(\S.*?)\s*$", re.MULTILINE)
_SPACE = re.compile(r"\s+")
# Roles that carry instructions rather than a turn of the conversation.
_NOT_TURNS = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class Offered:
    """One tool a request offers."""

    name: str                    # as a call must name it (flattened names kept whole)
    schema: dict[str, Any]       # its JSON schema (parameters / input_schema)
    namespace: str | None = None  # the Responses namespace tool it sits in


@dataclass(frozen=True, slots=True)
class Situation:
    """What the decision needs from a request, whatever its wire."""

    tools: tuple[Offered, ...]
    last_user_text: str          # the texts of the last user turn, one per line
    tool_output: str | None      # the tool result the conversation ends with, if it ends with one


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    arguments: dict[str, Any]
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    call: Call | None = None     # call this tool
    text: str | None = None      # or answer with this text; both None: the wire's usual answer


def decide(s: Situation, word: str) -> Decision:
    """What an agent-mode sim whose replies start with `word` answers in situation `s`."""
    if s.tool_output is not None:
        said = _SPACE.sub(" ", s.tool_output).strip()[:OUTPUT_CHARS]
        return Decision(text=f"{word} The tool said: {said}")
    run = _last(_RUN, s.last_user_text)
    if run is not None:
        call = _call(s.tools, SHELL_TOOLS, run)
        if call is not None:
            return Decision(call=call)
    path = _last(_READ, s.last_user_text)
    if path is not None:
        call = _call(s.tools, READ_TOOLS, path)
        if call is not None:
            return Decision(call=call)
    return Decision()


def _last(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.findall(text)
    return str(found[-1]) if found else None


def base_name(name: str) -> str:
    """A tool's own name: gateways and MCP bridges flatten `<prefix>__<name>`."""
    return name.rsplit("__", 1)[-1]


def _call(tools: tuple[Offered, ...], wanted: tuple[tuple[str, str], ...], value: str) -> Call | None:
    for name, prop in wanted:
        for tool in tools:
            if base_name(tool.name) == name:
                return Call(tool.name, _arguments(tool.schema, prop, value), tool.namespace)
    return None


def _arguments(schema: dict[str, Any], prop: str, value: str) -> dict[str, Any]:
    """The value under `prop` (an argv array where the schema wants one), other required properties filled."""
    given_props = schema.get("properties")
    props: dict[str, Any] = given_props if isinstance(given_props, dict) else {}
    spec = props.get(prop)
    argv = isinstance(spec, dict) and spec.get("type") == "array"
    args: dict[str, Any] = {prop: ["bash", "-lc", value] if argv else value}
    required = schema.get("required")
    for name in required if isinstance(required, list) else ():
        if isinstance(name, str) and name not in args:
            given = props.get(name)
            args[name] = _filler(name, given if isinstance(given, dict) else {})
    return args


def _filler(name: str, spec: dict[str, Any]) -> Any:
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = spec.get("type")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "Runs the command the user asked for" if name == "description" else "sim"


# Reading each wire's request into a Situation.

def _lines(content: Any) -> str:
    """A message's texts, one per line (so `run:` lines stay at the start of a line)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content
                         if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _last_user(messages: Iterable[Any]) -> str:
    for m in reversed(list(messages)):
        if isinstance(m, dict) and m.get("role") == "user" and (m.get("type") in (None, "message")):
            return _lines(m.get("content"))
    return ""


def _turns(messages: Any) -> list[dict[str, Any]]:
    """The conversation's turns: instructions (system, developer) left out."""
    return [m for m in messages if isinstance(m, dict) and m.get("role") not in _NOT_TURNS] \
        if isinstance(messages, list) else []


def chat_situation(body: dict[str, Any]) -> Situation:
    tools: list[Offered] = []
    for t in body.get("tools") or ():
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            tools.append(Offered(fn["name"], params if isinstance(params, dict) else {}))
    turns = _turns(body.get("messages"))
    output = None
    if turns and turns[-1].get("role") == "tool":
        output = _lines(turns[-1].get("content"))
    return Situation(tuple(tools), _last_user(turns), output)


def _responses_tools(tools: Any, namespace: str | None = None) -> list[Offered]:
    out: list[Offered] = []
    for t in tools if isinstance(tools, list) else ():
        if not isinstance(t, dict):
            continue
        if t.get("type") == "namespace":
            out += _responses_tools(t.get("tools"), str(t.get("name")))
        elif t.get("type") == "function" and isinstance(t.get("name"), str):
            params = t.get("parameters")
            out.append(Offered(t["name"], params if isinstance(params, dict) else {}, namespace))
    return out


_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output", "local_shell_call_output",
                      "shell_call_output"})


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):   # content parts: input_text, output_text …
        return "\n".join(str(p.get("text", "")) for p in output if isinstance(p, dict) and "text" in p)
    return ""


def responses_situation(body: dict[str, Any]) -> Situation:
    given = body.get("input")
    items = [{"role": "user", "content": given}] if isinstance(given, str) else given if isinstance(given, list) else []
    output = None
    for item in reversed(items):
        if not isinstance(item, dict) or item.get("type") == "reasoning" or item.get("role") in _NOT_TURNS:
            continue  # reasoning and instructions are not a turn of their own
        if item.get("type") in _OUTPUTS:
            output = _output_text(item.get("output"))
        break
    return Situation(tuple(_responses_tools(body.get("tools"))), _last_user(items), output)


def messages_situation(body: dict[str, Any]) -> Situation:
    tools = tuple(Offered(t["name"], t["input_schema"] if isinstance(t.get("input_schema"), dict) else {})
                  for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("name"), str))
    turns = _turns(body.get("messages"))
    output = None
    last = turns[-1] if turns else None
    if last is not None and last.get("role") == "user" and isinstance(last.get("content"), list):
        results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            output = "\n".join(_lines(b.get("content")) for b in results)
    return Situation(tools, _last_user_blocks(turns), output)


def _last_user_blocks(turns: list[dict[str, Any]]) -> str:
    """The last user turn's own texts (a tool_result's content is not something the user said)."""
    for m in reversed(turns):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                content = [b for b in content if isinstance(b, dict) and b.get("type") == "text"]
            return _lines(content)
    return ""
