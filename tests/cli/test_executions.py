"""``kitaru executions list`` and ``kitaru executions get``."""

from __future__ import annotations

from cli_helpers import Invoke, make_execution, parse

from kitaru.cli import executions
from kitaru.models import CheckpointCall, Execution, ExecutionStatus
from kitaru.store import Store


def test_list_without_project_is_empty(invoke: Invoke) -> None:
    result = invoke("executions", "list")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Kitaru executions\n  Executions: none found\n"
    doc = parse(invoke("executions", "list", "-o", "json").stdout)
    assert doc == {"command": "executions.list", "items": [], "count": 0}


def test_list_empty_store(invoke: Invoke, store: Store) -> None:
    result = invoke("executions", "list")
    assert result.exit_code == 0
    assert "Executions: none found" in result.stdout


def test_list_table_and_json(invoke: Invoke, store: Store) -> None:
    first = make_execution(store, flow="alpha", status="completed")
    second = make_execution(store, flow="beta", status="failed", original_exec_id=first)
    result = invoke("executions", "list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Kitaru executions"
    assert lines[1].split() == [
        "ID", "Flow", "Status", "Started", "Duration", "Pending", "wait", "Replay", "of"
    ]  # fmt: skip
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert lines[3].split()[:3] == [second, "beta", "failed"]
    assert lines[3].split()[-1] == first
    assert lines[4].split()[:3] == [first, "alpha", "completed"]
    # Columns are aligned: every row starts its Flow column at the same offset.
    offsets = {line.index("alpha" if "alpha" in line else "beta") for line in lines[3:]}
    assert len(offsets) == 1
    doc = parse(invoke("executions", "list", "-o", "json").stdout)
    assert doc["command"] == "executions.list"
    assert doc["count"] == 2
    assert [i["exec_id"] for i in doc["items"]] == [second, first]
    assert doc["items"][0]["original_exec_id"] == first
    assert "checkpoints" not in doc["items"][0]


def test_list_filters(invoke: Invoke, store: Store) -> None:
    make_execution(store, flow="alpha", status="completed")
    failed = make_execution(store, flow="beta", status="failed")
    doc = parse(invoke("executions", "list", "--status", "FAILED", "-o", "json").stdout)
    assert [i["exec_id"] for i in doc["items"]] == [failed]
    doc = parse(invoke("executions", "list", "--flow", "alpha", "-o", "json").stdout)
    assert [i["flow_name"] for i in doc["items"]] == ["alpha"]
    doc = parse(invoke("executions", "list", "--limit", "1", "-o", "json").stdout)
    assert doc["count"] == 1


def test_list_bad_status_is_a_handled_error(invoke: Invoke, store: Store) -> None:
    result = invoke("executions", "list", "--status", "bogus")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Unsupported status filter 'bogus'.")


def test_get_text(invoke: Invoke, store: Store) -> None:
    exec_id = make_execution(store, flow="research", status="completed")
    result = invoke("executions", "get", exec_id)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Kitaru execution"
    assert f"  Execution ID: {exec_id}" in lines
    assert "  Flow: research" in lines
    assert "  Status: completed" in lines
    assert "  Ended: not available" in lines
    assert "  Stack: local" in lines
    assert "  Pending wait: none" in lines
    assert "  Wait question: none" in lines
    assert "  Failure: none" in lines
    assert "  Checkpoints: none" in lines
    assert "  Artifacts: 0" in lines
    assert "  Replay of: none" in lines
    started = next(line for line in lines if line.startswith("  Started: "))
    assert len(started.removeprefix("  Started: ")) == len("2026-03-07 10:00:00")


def test_get_by_prefix_and_json(invoke: Invoke, store: Store) -> None:
    exec_id = make_execution(store)
    result = invoke("executions", "get", exec_id[:-3], "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = parse(result.stdout)
    assert doc["command"] == "executions.get"
    item = doc["item"]
    assert item["exec_id"] == exec_id
    assert item["checkpoints"] == [] and item["artifacts"] == []
    assert "frozen_execution_spec" in item


def test_get_failure_message(invoke: Invoke, store: Store) -> None:
    failure = {"message": "boom", "exception_type": "ValueError", "origin": "user_code"}
    exec_id = make_execution(store, status="failed", failure=failure)
    result = invoke("executions", "get", exec_id)
    assert "  Failure: boom" in result.stdout.splitlines()


def test_get_names_the_next_step(invoke: Invoke, store: Store) -> None:
    failure = {"message": "boom", "exception_type": "ValueError", "origin": "user_code"}
    failed = make_execution(store, status="failed", failure=failure)
    lines = invoke("executions", "get", failed).stdout.splitlines()
    assert f"  Next: kitaru executions retry {failed}" in lines
    done = make_execution(store, status="completed")
    assert not any(
        line.startswith("  Next:") for line in invoke("executions", "get", done).stdout.splitlines()
    )
    waiting = make_execution(store, status="waiting")  # no pending wait, no runner
    lines = invoke("executions", "get", waiting).stdout.splitlines()
    assert f"  Next: kitaru executions resume {waiting}" in lines


def test_get_unknown_id(invoke: Invoke, store: Store) -> None:
    result = invoke("executions", "get", "kr-zzzz")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Failed to load execution 'kr-zzzz': no such execution.\n"


def test_get_unknown_id_json(invoke: Invoke, store: Store) -> None:
    result = invoke("executions", "get", "kr-zzzz", "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert parse(result.stderr) == {
        "command": "executions.get",
        "error": {
            "type": "KitaruNotFoundError",
            "message": "Failed to load execution 'kr-zzzz': no such execution.",
        },
    }


def test_get_without_project_json(invoke: Invoke) -> None:
    result = invoke("executions", "get", "kr-zzzz", "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert parse(result.stderr)["error"]["type"] == "KitaruProjectNotFoundError"


def _call(name: str, status: str) -> CheckpointCall:
    return CheckpointCall(
        call_id=f"c-{name}",
        name=name,
        invocation_id=name,
        status=status,
        started_at=None,
        ended_at=None,
    )


def test_checkpoint_summary_shows_four_then_a_count() -> None:
    def summary(n: int) -> str:
        calls = [_call(f"step{i}", "completed") for i in range(n)]
        execution = Execution(
            exec_id="kr-x",
            flow_id="f",
            flow_name="f",
            status=ExecutionStatus.COMPLETED,
            started_at=None,
            ended_at=None,
            stack_name="local",
            checkpoints=calls,
        )
        return executions._checkpoints(execution)

    assert summary(0) == "none"
    assert summary(2) == "step0 (completed), step1 (completed)"
    assert summary(4).count("(completed)") == 4 and "more" not in summary(4)
    assert summary(6) == (
        "step0 (completed), step1 (completed), step2 (completed), step3 (completed), ... (+2 more)"
    )
