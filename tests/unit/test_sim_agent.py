"""Agent mode's decision: a shell or Read tool is called only when the last user text asks, a tool's
result is answered with what it said, and anything else gets no tool call."""

from __future__ import annotations

from typing import Any

from gateway.sim import anthropic_reply
from gateway.sim.agent import (Call, Decision, Offered, Situation, chat_situation, decide, messages_situation,
                               responses_situation)

EXEC = {"type": "object", "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
        "required": ["cmd"], "additionalProperties": False}
BASH = {"type": "object", "properties": {"command": {"type": "string"}, "description": {"type": "string"},
                                         "timeout": {"type": "number"}}, "required": ["command", "description"]}
SHELL_ARGV = {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
              "required": ["command"]}
READ = {"type": "object", "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["file_path"]}
OTHER = {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}


def situation(text: str, *tools: Offered, output: str | None = None) -> Situation:
    return Situation(tuple(tools), text, output)


def test_a_run_line_calls_exec_command_with_the_command() -> None:
    s = situation("please\nrun: cat note.txt", Offered("write_stdin", OTHER), Offered("exec_command", EXEC))
    assert decide(s, "sim") == Decision(call=Call("exec_command", {"cmd": "cat note.txt"}))


def test_bash_gets_the_command_and_its_required_description() -> None:
    call = decide(situation("run: ls -la", Offered("Agent", OTHER), Offered("Bash", BASH)), "sim").call
    assert call is not None and call.name == "Bash"
    assert call.arguments["command"] == "ls -la" and isinstance(call.arguments["description"], str)
    assert "timeout" not in call.arguments   # only required properties are filled


def test_a_shell_tool_whose_command_is_an_array_gets_an_argv() -> None:
    call = decide(situation("run: echo hi", Offered("shell", SHELL_ARGV)), "sim").call
    assert call == Call("shell", {"command": ["bash", "-lc", "echo hi"]})


def test_exec_command_is_preferred_to_bash_and_bash_to_shell() -> None:
    s = situation("run: x", Offered("shell", SHELL_ARGV), Offered("Bash", BASH), Offered("exec_command", EXEC))
    assert decide(s, "sim").call == Call("exec_command", {"cmd": "x"})
    s = situation("run: x", Offered("shell", SHELL_ARGV), Offered("Bash", BASH))
    call = decide(s, "sim").call
    assert call is not None and call.name == "Bash"


def test_a_flattened_or_namespaced_tool_is_called_by_the_name_it_was_offered_under() -> None:
    assert decide(situation("run: x", Offered("mcp__box__exec_command", EXEC)), "sim").call \
        == Call("mcp__box__exec_command", {"cmd": "x"})
    assert decide(situation("run: x", Offered("exec_command", EXEC, "tools_v1")), "sim").call \
        == Call("exec_command", {"cmd": "x"}, "tools_v1")


def test_a_read_line_calls_read_with_the_path() -> None:
    s = situation("read: /tmp/a.txt", Offered("Bash", BASH), Offered("Read", READ))
    assert decide(s, "sim").call == Call("Read", {"file_path": "/tmp/a.txt"})


def test_a_tool_result_is_answered_with_what_the_tool_said_collapsed_and_cut() -> None:
    s = situation("run: cat note.txt", Offered("Bash", BASH), output="line one\n\n   line  two\t" + "x" * 400)
    text = decide(s, "sim").text
    assert text is not None and text.startswith("sim The tool said: line one line two xxx")
    assert len(text) == len("sim The tool said: ") + 300


def test_without_a_request_or_without_a_matching_tool_there_is_no_call() -> None:
    assert decide(situation("say hi", Offered("Bash", BASH), Offered("Agent", OTHER)), "sim") == Decision()
    assert decide(situation("run: ls", Offered("Agent", OTHER), Offered("Read", READ)), "sim") == Decision()
    assert decide(situation("read: a", Offered("Bash", BASH)), "sim") == Decision()
    assert decide(situation("don't run: this inline", Offered("Bash", BASH)), "sim") == Decision()


def test_chat_the_last_user_text_and_a_trailing_tool_message() -> None:
    tools = [{"type": "function", "function": {"name": "exec_command", "parameters": EXEC}}]
    asked = {"tools": tools, "messages": [{"role": "system", "content": "be good"},
                                          {"role": "user", "content": [{"type": "text", "text": "hi"},
                                                                       {"type": "text", "text": "run: pwd"}]}]}
    assert decide(chat_situation(asked), "sim").call == Call("exec_command", {"cmd": "pwd"})
    answered = {**asked, "messages": asked["messages"] + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "exec_command", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "/home/me"}]}
    assert decide(chat_situation(answered), "sim").text == "sim The tool said: /home/me"


def test_responses_namespace_tools_and_an_output_after_reasoning_items() -> None:
    tools: list[dict[str, Any]] = [
        {"type": "namespace", "name": "box", "description": "d", "tools": [
            {"type": "function", "name": "exec_command", "parameters": EXEC}]},
        {"type": "web_search"}]
    body: dict[str, Any] = {"tools": tools, "input": [
        {"type": "message", "role": "developer", "content": "rules"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run: ls"}]}]}
    assert decide(responses_situation(body), "sim").call == Call("exec_command", {"cmd": "ls"}, "box")
    body["input"] += [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e"},
                      {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
                      {"type": "function_call_output", "call_id": "c1",
                       "output": [{"type": "input_text", "text": "a.txt"}]}]
    assert decide(responses_situation(body), "sim").text == "sim The tool said: a.txt"


def test_messages_a_system_message_after_the_tool_result_does_not_hide_it() -> None:
    body = {"tools": [{"name": "Bash", "input_schema": BASH}], "messages": [
        {"role": "user", "content": [{"type": "text", "text": "<reminder>"}, {"type": "text", "text": "run: id"}]},
        {"role": "system", "content": "env"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": [{"type": "text", "text": "uid=0"}]}]},
        {"role": "system", "content": [{"type": "text", "text": "more env"}]}]}
    assert decide(messages_situation(body), "sim").text == "sim The tool said: uid=0"
    asking = {**body, "messages": body["messages"][:2]}
    call = decide(messages_situation(asking), "sim").call
    assert call is not None and call.arguments["command"] == "id"


def test_agent_mode_never_calls_the_first_tool_offered() -> None:
    body = {"model": "m", "max_tokens": 100, "tools": [{"name": "Agent", "input_schema": OTHER}],
            "messages": [{"role": "user", "content": "hello"}]}
    assert [b.kind for b in anthropic_reply.plan(body, "sim", 3, 1, agent=True).blocks] == ["text"]
    assert [b.kind for b in anthropic_reply.plan(body, "sim", 3, 1).blocks] == ["text", "tool_use"]
