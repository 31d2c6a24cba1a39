"""Every request a real client was recorded sending (tests/fixtures/clients/) is taken by the gateway:
its own request check, the pass-through (only `model` changes), the simulator of the client's own
wire, and every crossing to another wire, whose result that wire's simulator must accept too.

A crossing may refuse only what its target cannot read (a document or file); a refusal of anything
else is a failure, named after the client and request that met it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.api.validate import check_body, parse_body
from gateway.core.errors import ApiError
from gateway.providers.base import Call, Endpoint
from gateway.wires.refused import Refused

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
ENDPOINTS: dict[str, Endpoint] = {"/v1/chat/completions": "chat", "/v1/responses": "responses",
                                  "/v1/messages": "messages"}
# The simulator that plays each wire's API, by the endpoint a request was sent to.
CHECKS = {"chat": "gateway.sim.chat_checks", "responses": "gateway.sim.responses_checks",
          "messages": "gateway.sim.anthropic_checks"}
# Content a target on another wire may be unable to read: refusing it is legitimate.
UNREADABLE = frozenset({"document", "file", "input_file", "container_upload"})


@dataclass(frozen=True)
class Captured:
    name: str            # "<client>-<version>/<NN>-<step>"
    path: str
    headers: dict[str, str]
    raw: bytes           # the body as bytes, as the gateway reads it off the wire

    @property
    def body(self) -> dict[str, Any]:
        return orjson.loads(self.raw)  # type: ignore[no-any-return]

    @property
    def endpoint(self) -> Endpoint:
        return ENDPOINTS[self.path.split("?")[0]]


def load(path: Path) -> Captured:
    record = orjson.loads(path.read_bytes())
    return Captured(f"{path.parent.name}/{path.stem}", record["path"], record["headers"], orjson.dumps(record["body"]))


CAPTURED = [load(p) for p in sorted(CORPUS.glob("*/[0-9][0-9]-*.json"))]


corpus = pytest.mark.parametrize("captured", CAPTURED, ids=lambda c: c.name)


def test_the_corpus_holds_every_client_and_its_later_turns() -> None:
    clients = {c.name.split("/")[0].rsplit("-", 1)[0] for c in CAPTURED}
    assert clients == {"codex", "claude-code", "openai-python", "anthropic-python", "openai-agents",
                       "langchain-openai", "langchain-anthropic", "vercel-ai"}
    assert {c.name.split("/")[0].rsplit("-", 1)[0] for c in CAPTURED if c.name.endswith("tool-result")} == clients


def problem_on_wire(endpoint: str, body: Any) -> str | None:
    """What the simulator of `endpoint`'s API would answer 400 for (imported here: a missing one fails the test)."""
    checks = importlib.import_module(CHECKS[endpoint])
    found: str | None = checks.problem(body)
    return found


def translate(fn: Callable[..., Any], *args: Any) -> Any:
    """Calls a translation with a list to note dropped features in, where it takes one."""
    if "dropped" in inspect.signature(fn).parameters:
        return fn(*args, dropped=[])
    return fn(*args)


def unreadable(body: Any) -> bool:
    """Does the request carry a document or file, which a target on another wire may not read?"""
    if isinstance(body, dict):
        return body.get("type") in UNREADABLE or any(unreadable(v) for v in body.values())
    if isinstance(body, list):
        return any(unreadable(v) for v in body)
    return False


@corpus
def test_the_gateways_request_check_accepts_it(captured: Captured) -> None:
    try:
        check_body(captured.endpoint, parse_body(captured.raw))
    except ApiError as exc:
        pytest.fail(f"{captured.name}: the gateway refuses it: {exc}")


@corpus
def test_pass_through_changes_only_the_model(captured: Captured) -> None:
    body = captured.body
    sent = Call(captured.endpoint, body, bool(body.get("stream")), "rid").upstream_body("m")
    assert orjson.loads(sent) == {**body, "model": "m"}, f"{captured.name}: pass-through changed more than the model"


@corpus
def test_its_own_wires_simulator_accepts_it(captured: Captured) -> None:
    found = problem_on_wire(captured.endpoint, captured.body)
    assert found is None, f"{captured.name}: the {captured.endpoint} simulator refuses it: {found}"


# ---- crossings ------------------------------------------------------------------------------------

def stored_items(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The items an `item_reference` names, as the gateway keeps the turns it answered: here the
    assistant messages the recording upstream wrote (ids `msg_…`)."""
    found: dict[str, dict[str, Any]] = {}
    for item in body.get("input") or ():
        if isinstance(item, dict) and item.get("type") == "item_reference" and str(item.get("id")).startswith("msg_"):
            found[item["id"]] = {"type": "message", "id": item["id"], "role": "assistant", "status": "completed",
                                 "content": [{"type": "output_text", "text": "It is sunny.", "annotations": []}]}
    return found


def earlier_turns(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chain a `previous_response_id` names, as the gateway keeps it: the question, and the calls
    whose outputs this request carries."""
    if not body.get("previous_response_id"):
        return []
    tools = [t.get("name") for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
    calls = [{"type": "function_call", "id": f"fc_{i}", "call_id": item["call_id"], "name": tools[0] if tools else "f",
              "arguments": "{}", "status": "completed"}
             for i, item in enumerate(body.get("input") or ())
             if isinstance(item, dict) and item.get("type") == "function_call_output"]
    return [{"type": "message", "role": "user", "content": "the earlier question"}, *calls]


def responses_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    from gateway.wires import responses_chat

    fn = responses_chat.request_out
    params = inspect.signature(fn).parameters
    extra: dict[str, Any] = {"references": stored_items(body)} if "references" in params else {}
    if "dropped" in params:
        extra["dropped"] = []
    return fn(body, earlier_turns(body), **extra)


def messages_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    from gateway.wires import messages_chat

    chat: dict[str, Any] = translate(messages_chat.request_out, body)
    return chat


def chat_to_messages(body: dict[str, Any]) -> dict[str, Any]:
    from gateway.wires import anthropic_chat

    raw = translate(anthropic_chat.request_out, body, "claude-target", bool(body.get("stream")))
    return orjson.loads(raw)  # type: ignore[no-any-return]


# Each crossing: the client's API, the steps that translate it, the wire whose simulator must accept it.
CROSSINGS: dict[str, tuple[Endpoint, tuple[Callable[[dict[str, Any]], dict[str, Any]], ...], str]] = {
    "messages → chat": ("messages", (messages_to_chat,), "chat"),
    "responses → chat": ("responses", (responses_to_chat,), "chat"),
    "responses → chat → messages": ("responses", (responses_to_chat, chat_to_messages), "messages"),
    "chat → messages": ("chat", (chat_to_messages,), "messages"),
}
CASES = [pytest.param(c, crossing, id=f"{c.name}: {crossing}")
         for c in CAPTURED for crossing, (origin, _, _) in CROSSINGS.items() if c.endpoint == origin]


@pytest.mark.parametrize(("captured", "crossing"), CASES)
def test_every_crossing_is_accepted_by_the_target_wires_simulator(captured: Captured, crossing: str) -> None:
    _, steps, target = CROSSINGS[crossing]
    body = captured.body
    try:
        for step in steps:
            body = step(body)
    except Refused as exc:
        # A target that cannot read a document or file may refuse it (and is skipped for the next
        # target); refusing anything else is what this corpus is here to catch.
        assert unreadable(captured.body), \
            f"{captured.name}: {crossing} refused, yet it holds no document or file: {exc.message} (param {exc.param})"
        return
    found = problem_on_wire(target, body)
    assert found is None, f"{captured.name}: {crossing} not accepted: {found}"
