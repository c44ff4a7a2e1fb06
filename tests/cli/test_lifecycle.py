"""``kitaru executions resume|retry|cancel|replay``: messages, JSON items, errors, --follow."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import (
    Invoke,
    json_lines,
    make_execution,
    parse,
    run_flow,
    wait_settled,
)

from kitaru.client import KitaruClient
from kitaru.store import Store


@pytest.fixture
def failed(flows: str, project_dir: Path) -> str:
    flag = project_dir / "FAIL"
    flag.touch()
    exec_id = run_flow(f"{flows}:content_pipeline", topic="AI").exec_id
    flag.unlink()
    return exec_id


@pytest.fixture
def waiting(flows: str) -> str:
    return run_flow(f"{flows}:approval").exec_id


def test_resume_after_input(invoke: Invoke, waiting: str) -> None:
    KitaruClient().executions.input(waiting, wait="approve", value=True)
    result = invoke("executions", "resume", waiting[:9])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"Resumed execution: {waiting}\n  Status: running\n"
    assert wait_settled(waiting).status.value == "completed"


def test_resume_follow_json(invoke: Invoke, waiting: str) -> None:
    KitaruClient().executions.input(waiting, wait="approve", value=False)
    result = invoke("executions", "resume", waiting, "--follow", "-o", "json")
    assert result.exit_code == 0, result.stderr
    docs = json_lines(result.stdout)
    assert docs[0]["command"] == "executions.resume"
    assert docs[0]["item"]["exec_id"] == waiting
    assert "checkpoints" in docs[0]["item"]
    assert {d["event"] for d in docs[1:-1]} == {"log"}
    assert "approved: False" in [d["item"]["message"] for d in docs[1:-1]]
    assert docs[-1]["item"]["status"] == "completed"


def test_resume_with_pending_wait_is_refused(invoke: Invoke, waiting: str) -> None:
    result = invoke("executions", "resume", waiting)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Resolve pending wait input before resuming execution '{waiting}'.\n"
    )


def test_wrong_states(invoke: Invoke, done: str) -> None:
    result = invoke("executions", "resume", done)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: Only paused executions can be resumed. Execution "
        f"'{done}' is currently 'completed'.\n"
    )
    result = invoke("executions", "retry", done)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Only failed executions can be retried. Execution "
        f"'{done}' is currently 'completed'.\n"
    )
    result = invoke("executions", "cancel", done, "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert parse(result.stderr) == {
        "command": "executions.cancel",
        "error": {
            "type": "KitaruStateError",
            "message": f"Execution '{done}' is already completed; only running or waiting "
            "executions can be cancelled.",
        },
    }


@pytest.mark.parametrize("command", ["resume", "retry", "cancel", "replay"])
def test_unknown_and_ambiguous_ids(invoke: Invoke, store: Store, command: str) -> None:
    make_execution(store)
    make_execution(store)
    extra = ["--from", "research"] if command == "replay" else []
    result = invoke("executions", command, "kr-zzzz", *extra)
    assert result.exit_code == 1
    assert result.stderr == "Error: Failed to load execution 'kr-zzzz': no such execution.\n"
    result = invoke("executions", command, "kr-", *extra)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Execution id prefix 'kr-' is ambiguous: it matches ")


def test_retry_follow_to_completion(invoke: Invoke, failed: str) -> None:
    result = invoke("executions", "retry", failed, "--follow")
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[:2] == [f"Retried execution: {failed}", "  Status: running"]
    assert "drafting" in out
    assert out[-1] == "[Execution completed successfully]"
    execution = KitaruClient().executions.get(failed)
    assert execution.status.value == "completed"
    assert len(execution.checkpoints[1].attempts) == 2


def test_retry_follow_failing_again_exits_1(invoke: Invoke, failed: str, project_dir: Path) -> None:
    (project_dir / "FAIL").touch()
    result = invoke("executions", "retry", failed, "--follow")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == f"  kitaru executions retry {failed}"


def test_cancel_waiting(invoke: Invoke, waiting: str) -> None:
    result = invoke("executions", "cancel", waiting)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"Cancelled execution: {waiting}\n  Status: cancelled\n"
    result = invoke("executions", "cancel", waiting)
    assert result.exit_code == 1
    assert "already cancelled" in result.stderr


def test_cancel_json(invoke: Invoke, waiting: str) -> None:
    doc = parse(invoke("executions", "cancel", waiting, "-o", "json").stdout)
    assert doc["command"] == "executions.cancel"
    assert doc["item"]["status"] == "cancelled"


def test_replay_with_args_and_overrides(invoke: Invoke, done: str) -> None:
    result = invoke(
        "executions",
        "replay",
        done,
        "--from",
        "write_draft",
        "--args",
        '{"topic": "ML"}',
        "--overrides",
        '{"checkpoint.research": "edited notes"}',
        "--follow",
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    new_id = out[0].removeprefix("Replayed execution: ")
    assert new_id != done and new_id.startswith("kr-")
    assert out[1] == "  Status: running"
    assert out[-1] == "[Execution completed successfully]"
    execution = KitaruClient().executions.get(new_id)
    assert execution.original_exec_id == done
    outputs = {a.name: a.load() for a in execution.artifacts if a.save_type == "step_output"}
    assert outputs == {"research": "edited notes", "write_draft": "EDITED NOTES"}


def test_replay_json_and_empty_overrides(invoke: Invoke, done: str) -> None:
    result = invoke(
        "executions", "replay", done, "--from", "research", "--overrides", "{}", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    doc = parse(result.stdout)
    assert doc["command"] == "executions.replay"
    assert doc["item"]["original_exec_id"] == done
    assert wait_settled(doc["item"]["exec_id"]).status.value == "completed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--args", "[1]"], "`--args` must be a JSON object (for example: '{\"topic\": \"AI\"}')."),
        (["--args", "{bad"], "Invalid JSON for `--args`: Expecting property name enclosed in "
         "double quotes (line 1, column 2)."),
        (["--overrides", "{bad"], "Invalid JSON for `--overrides`: Expecting property name "
         "enclosed in double quotes (line 1, column 2)."),
        (["--overrides", '"x"'], "`--overrides` must be a JSON object (for example: "
         "'{\"checkpoint.research\": \"notes\"}')."),
        (["--args", '{"overrides": 1}'], "Flow inputs named overrides cannot be passed with "
         "`--args` (the replay call reserves these names)."),
    ],
)  # fmt: skip
def test_replay_bad_json(invoke: Invoke, done: str, args: list[str], message: str) -> None:
    result = invoke("executions", "replay", done, "--from", "research", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"


def test_replay_unknown_selector(invoke: Invoke, done: str) -> None:
    result = invoke("executions", "replay", done, "--from", "nope")
    assert result.exit_code == 1
    assert "nope" in result.stderr and "research" in result.stderr
    assert invoke("executions", "replay", done).exit_code == 2  # --from is required
