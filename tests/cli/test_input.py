"""``kitaru executions input``: the decision order, strict JSON, wait selection and messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Invoke, make_execution, parse, run_flow, write_flows

from kitaru.client import KitaruClient
from kitaru.store import Store, now_iso


@pytest.fixture
def waiting(project_dir: Path) -> str:
    """An execution waiting on ``approve`` (schema bool) whose runner has exited."""
    Store.init(project_dir)
    execution = run_flow(f"{write_flows(project_dir)}:approval")
    assert execution.status.value == "waiting"
    return execution.exec_id


def _pending(exec_id: str) -> list[str]:
    return [w.name for w in KitaruClient().executions.pending_waits(exec_id)]


def test_value_resolves_the_single_wait(invoke: Invoke, waiting: str) -> None:
    result = invoke("executions", "input", waiting[:8], "--value", "true")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (f"Resolved wait input for execution: {waiting}\n  Status: waiting\n")
    assert result.stderr == ""
    assert _pending(waiting) == []


def test_value_json_item_is_the_full_execution(invoke: Invoke, waiting: str) -> None:
    result = invoke("executions", "input", waiting, "--value", "false", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = parse(result.stdout)
    assert doc["command"] == "executions.input"
    assert doc["item"]["exec_id"] == waiting
    assert "checkpoints" in doc["item"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "Invalid JSON for `--value`: Expecting value (line 1, column 1)."),
        ('{\n  "a": }', "Invalid JSON for `--value`: Expecting value (line 2, column 8)."),
        ("NaN", "Invalid JSON for `--value`: NaN is not valid JSON."),
        ("[Infinity]", "Invalid JSON for `--value`: Infinity is not valid JSON."),
        ('{"a": 1, "a": 2}', "Invalid JSON for `--value`: duplicate key 'a'."),
    ],
)
def test_invalid_json(invoke: Invoke, waiting: str, value: str, message: str) -> None:
    result = invoke("executions", "input", waiting, "--value", value)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"
    assert _pending(waiting) == ["approve"]


def test_invalid_json_error_document(invoke: Invoke, waiting: str) -> None:
    result = invoke("executions", "input", waiting, "--value", "yes", "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert parse(result.stderr) == {
        "command": "executions.input",
        "error": {
            "type": "ValueError",
            "message": "Invalid JSON for `--value`: Expecting value (line 1, column 1).",
        },
    }


def test_oversized_value_is_refused_before_parsing(invoke: Invoke, waiting: str) -> None:
    result = invoke("executions", "input", waiting, "--value", '"' + "x" * (1024 * 1024) + '"')
    assert result.exit_code == 1
    assert "the limit is 1048576 (1 MiB)" in result.stderr


def test_schema_invalid_value(invoke: Invoke, waiting: str) -> None:
    result = invoke("executions", "input", waiting, "--value", '"yes"')
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Wait input failed validation for 'approve'")
    assert "failed validation" in result.stderr
    error = parse(invoke("executions", "input", waiting, "--value", "1", "-o", "json").stderr)
    assert error["error"]["type"] == "KitaruWaitValidationError"
    assert _pending(waiting) == ["approve"]


def test_abort(invoke: Invoke, waiting: str) -> None:
    result = invoke("executions", "input", waiting, "--abort")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"Aborted wait for execution: {waiting}\n  Status: cancelled\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Execution ID is required in non-interactive mode. Use `--interactive` to sweep "
         "all waiting executions."),
        (["ID"], "`--value` is required (or use `--abort` / `--interactive`)."),
        (["ID", "--abort", "--value", "true"], "`--value` cannot be used with `--abort`."),
        (["-i", "--value", "true"], "`--value` cannot be used with `--interactive`."),
        (["--interactive", "--abort"], "`--abort` cannot be used with `--interactive`."),
        (["--interactive"], "Interactive mode requires a terminal (TTY) for input and output."),
        (["ID", "--interactive"],
         "Interactive mode requires a terminal (TTY) for input and output."),
    ],
)  # fmt: skip
def test_flag_errors(invoke: Invoke, waiting: str, args: list[str], message: str) -> None:
    args = [waiting if a == "ID" else a for a in args]
    result = invoke("executions", "input", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"
    assert _pending(waiting) == ["approve"]


def test_interactive_refuses_json(invoke: Invoke) -> None:
    result = invoke("executions", "input", "--interactive", "-o", "json")
    assert result.exit_code == 1
    assert parse(result.stderr)["error"]["message"] == (
        "`--output json` cannot be used with `--interactive`."
    )


def test_no_pending_wait(invoke: Invoke, store: Store) -> None:
    exec_id = make_execution(store, status="completed")
    result = invoke("executions", "input", exec_id, "--value", "true")
    assert result.exit_code == 1
    assert result.stderr == f"Error: Execution '{exec_id}' has no pending waits to resolve.\n"


def test_unknown_and_ambiguous_ids(invoke: Invoke, waiting: str, project_dir: Path) -> None:
    make_execution(Store.open_at(project_dir / ".kitaru"))
    result = invoke("executions", "input", "kr-zzzz", "--value", "true")
    assert result.exit_code == 1
    assert result.stderr == "Error: Failed to load execution 'kr-zzzz': no such execution.\n"
    result = invoke("executions", "input", "kr-", "--value", "true")
    assert result.exit_code == 1
    assert "is ambiguous" in result.stderr


def _second_wait(store: Store, exec_id: str) -> None:
    from kitaru.store import waits

    waits.open_wait(
        store,
        exec_id,
        {
            "seq": 3,
            "wait_id": f"{exec_id}.w3",
            "name": "second",
            "invocation_id": "second",
            "question": None,
            "schema": None,
            "metadata": {},
            "status": "pending",
            "value": None,
            "created_at": now_iso(),
            "resolved_at": None,
            "error": None,
            "timeout": 0,
        },
    )


def test_two_pending_waits_need_wait(invoke: Invoke, waiting: str, project_dir: Path) -> None:
    _second_wait(Store.open_at(project_dir / ".kitaru"), waiting)
    result = invoke("executions", "input", waiting, "--value", "true")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: Execution '{waiting}' has multiple pending waits (approve, second). Use "
        "`--wait NAME` to choose one, or `kitaru executions input --interactive` to resolve "
        "them.\n"
    )
    result = invoke("executions", "input", waiting, "--wait", "second", "--value", '{"ok": 1}')
    assert result.exit_code == 0, result.stderr
    assert _pending(waiting) == ["approve"]
    result = invoke("executions", "input", waiting, "--wait", "nope", "--value", "true")
    assert result.exit_code == 1
    assert "has no pending wait 'nope'" in result.stderr
    result = invoke("executions", "input", waiting, "--wait", f"{waiting}.w2", "--abort")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("  Status: cancelled\n")
