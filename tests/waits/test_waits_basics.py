"""``kitaru.wait`` basics: schemas, stored JSON Schema, context errors, names, metadata."""

from __future__ import annotations

from typing import Any

import pytest
import wait_flows as wf
from wait_helpers import Background, wait_for_pending, wait_record

import kitaru
from kitaru import checkpoint, flow
from kitaru.errors import KitaruContextError

CASES: list[tuple[str, Any, dict[str, Any] | None, Any, str]] = [
    # kind, answer, stored schema, expected wait() value, expected type name
    ("none", {"anything": [1, 2]}, None, None, "NoneType"),
    ("bool", True, {"type": "boolean"}, True, "bool"),
    ("int", 7, {"type": "integer"}, 7, "int"),
    ("float", 2.5, {"type": "number"}, 2.5, "float"),
    ("str", "hello", {"type": "string"}, "hello", "str"),
    ("list", [1, "a", None], {"type": "array", "items": {}}, [1, "a", None], "list"),
    (
        "dict",
        {"a": {"b": 1}},
        {"type": "object", "additionalProperties": True},
        {"a": {"b": 1}},
        "dict",
    ),
    ("raw", {"n": 3}, wf.RAW_SCHEMA, {"n": 3}, "dict"),
]


@pytest.mark.parametrize(("kind", "answer", "schema", "expected", "type_name"), CASES)
def test_wait_returns_the_answer_converted_to_its_schema(
    client, kind, answer, schema, expected, type_name
) -> None:
    run = Background(lambda: wf.gate_flow.run(kind, 30))
    exec_id, pending = wait_for_pending(client, "approve")
    assert pending.schema == schema
    assert pending.question == f"Answer a {kind}"
    assert pending.metadata == {"kind": kind, "nested": {"a": [1, 2]}}
    assert pending.wait_id == f"{exec_id}.w1"
    client.executions.input(exec_id, wait="approve", value=answer)
    outcome = run.join()
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result["type"] == type_name
    assert result["value"] == expected
    record = wait_record(exec_id)
    assert record["status"] == "resolved"
    assert record["value"] == answer
    assert record["metadata"] == {"kind": kind, "nested": {"a": [1, 2]}}


def test_wait_with_a_pydantic_model_returns_a_model_instance(client) -> None:
    run = Background(lambda: wf.gate_flow.run("model", 30))
    exec_id, pending = wait_for_pending(client, "approve")
    assert pending.schema["type"] == "object"
    assert set(pending.schema["required"]) == {"notes", "major_version"}
    assert pending.schema["properties"]["major_version"]["type"] == "integer"
    client.executions.input(exec_id, wait="approve", value={"notes": "n", "major_version": 2})
    outcome = run.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"]["type"] == "Release"
    value = outcome["result"]["value"]
    assert isinstance(value, wf.Release)
    assert value == wf.Release(notes="n", major_version=2)


def test_wait_outside_a_flow_is_a_context_error() -> None:
    with pytest.raises(KitaruContextError) as info:
        kitaru.wait(schema=bool)
    assert str(info.value) == "wait() can only run inside a @flow."


def test_wait_inside_a_checkpoint_is_a_context_error() -> None:
    @checkpoint
    def inner() -> None:
        kitaru.wait(schema=bool, timeout=0)

    @flow
    def outer() -> None:
        inner()

    handle = outer.run()
    assert handle.status.value == "failed"
    with pytest.raises(kitaru.KitaruExecutionError) as info:
        handle.wait()
    assert (
        "wait() cannot be called inside a @checkpoint. Call wait() in the flow body instead."
        in str(info.value)
    )
    client = kitaru.KitaruClient()
    failure = client.executions.get(handle.exec_id).failure
    assert failure.exception_type.endswith("KitaruContextError")


def test_second_wait_with_the_same_name_gets_its_own_identity(client) -> None:
    run = Background(lambda: wf.two_waits_flow.run(30))
    exec_id, first = wait_for_pending(client, "ask")
    assert first.wait_id == f"{exec_id}.w1"
    client.executions.input(exec_id, wait="ask", value=1)

    def second_pending():
        waits = client.executions.pending_waits(exec_id)
        return waits[0] if waits and waits[0].wait_id != first.wait_id else None

    from wait_helpers import wait_until

    second = wait_until(second_pending, what="the second wait")
    assert second.name == "ask"
    assert second.wait_id == f"{exec_id}.w2"
    assert wait_record(exec_id, 2)["invocation_id"] == "ask_2"
    assert wait_record(exec_id, 1)["invocation_id"] == "ask"
    client.executions.input(exec_id, wait=second.wait_id, value=2)
    outcome = run.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"][:2] == [1, 2]
    assert wait_record(exec_id, 1)["value"] == 1
    assert wait_record(exec_id, 2)["value"] == 2


def test_wait_metadata_and_question_are_stored(client) -> None:
    handle = wf.gate_flow.run("bool", 0)
    record = wait_record(handle.exec_id)
    assert record["metadata"] == {"kind": "bool", "nested": {"a": [1, 2]}}
    assert record["question"] == "Answer a bool"
    assert record["schema"] == {"type": "boolean"}
    assert record["status"] == "pending"
    execution = client.executions.get(handle.exec_id)
    assert execution.pending_wait.metadata == {"kind": "bool", "nested": {"a": [1, 2]}}
