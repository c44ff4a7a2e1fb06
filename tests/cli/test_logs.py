"""``kitaru executions logs``: text, verbosity, grouping, JSON, flag conflicts and --follow."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Invoke, json_lines, make_execution, parse, run_flow

from kitaru.client import KitaruClient
from kitaru.store import Store

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def test_default_text_is_messages_of_both_sources(invoke: Invoke, done: str) -> None:
    result = invoke("executions", "logs", done)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "pipeline start\nresearching AI\ndrafting\n"
    assert result.stderr == ""


def test_verbosity(invoke: Invoke, done: str) -> None:
    one = invoke("executions", "logs", done, "-v").stdout.splitlines()
    assert re.fullmatch(rf"{STAMP} INFO  researching AI", one[1]), one
    assert "[" not in one[1]
    two = invoke("executions", "logs", done, "-vv").stdout.splitlines()
    assert re.fullmatch(rf"{STAMP} INFO  \[runner\] pipeline start", two[0]), two
    assert re.fullmatch(rf"{STAMP} INFO  \[research\] researching AI", two[1]), two
    assert invoke("executions", "logs", done, "-vvv").stdout.splitlines() == two


def test_filters(invoke: Invoke, done: str) -> None:
    assert invoke("executions", "logs", done, "--source", "step").stdout == (
        "researching AI\ndrafting\n"
    )
    assert invoke("executions", "logs", done, "--source", "RUNNER").stdout == "pipeline start\n"
    assert invoke("executions", "logs", done, "--checkpoint", "write_draft").stdout == "drafting\n"
    assert invoke("executions", "logs", done, "--limit", "1").stdout == "pipeline start\n"
    assert invoke("executions", "logs", done, "--source", "bogus").exit_code == 2


def test_grouped(invoke: Invoke, done: str) -> None:
    result = invoke("executions", "logs", done, "--grouped")
    assert result.exit_code == 0
    rule = "─" * 30
    assert result.stdout.splitlines() == [
        f"── checkpoint: runner {rule}",
        "pipeline start",
        "",
        f"── checkpoint: research {rule}",
        "researching AI",
        "",
        f"── checkpoint: write_draft {rule}",
        "drafting",
    ]


def test_json(invoke: Invoke, done: str) -> None:
    doc = parse(invoke("executions", "logs", done, "-o", "json").stdout)
    assert doc["command"] == "executions.logs"
    assert doc["count"] == 3
    first, second = doc["items"][0], doc["items"][1]
    assert first["message"] == "pipeline start" and first["source"] == "runner"
    assert "checkpoint_name" not in first  # null keys are left out
    assert second["checkpoint_name"] == "research" and second["source"] == "step"
    assert {"level", "timestamp", "module", "filename", "lineno"} <= set(second)


def test_grouped_with_json_is_refused(invoke: Invoke, done: str) -> None:
    result = invoke("executions", "logs", done, "--grouped", "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    error = parse(result.stderr)["error"]
    assert error["message"] == "`--grouped` cannot be combined with `--output json`."


def test_checkpoint_with_runner_source_is_refused(invoke: Invoke, done: str) -> None:
    result = invoke("executions", "logs", done, "--checkpoint", "research", "--source", "runner")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: `--checkpoint` cannot be combined with `--source runner`.\n"


def test_interval_must_be_positive(invoke: Invoke, done: str) -> None:
    result = invoke("executions", "logs", done, "--follow", "--interval", "0")
    assert result.exit_code == 1
    assert result.stderr == "Error: `--interval` must be > 0.\n"


def test_empty(invoke: Invoke, store: Store) -> None:
    exec_id = make_execution(store)
    result = invoke("executions", "logs", exec_id)
    assert result.exit_code == 0
    assert result.stdout == (
        f"No log entries found for execution {exec_id}.\n"
        "The execution may still be starting, or step logging may be disabled.\n"
    )
    doc = parse(invoke("executions", "logs", exec_id, "-o", "json").stdout)
    assert doc == {"command": "executions.logs", "items": [], "count": 0}


def test_unknown_and_ambiguous_ids(invoke: Invoke, store: Store) -> None:
    make_execution(store)
    make_execution(store)
    result = invoke("executions", "logs", "kr-zzzz")
    assert result.exit_code == 1
    assert result.stderr == "Error: Failed to load execution 'kr-zzzz': no such execution.\n"
    result = invoke("executions", "logs", "kr-", "--follow")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Execution id prefix 'kr-' is ambiguous")


# -- --follow -----------------------------------------------------------------------------------


def test_follow_completed(invoke: Invoke, done: str) -> None:
    result = invoke("executions", "logs", done, "--follow")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "pipeline start\nresearching AI\ndrafting\n[Execution completed successfully]\n"
    )
    events = json_lines(invoke("executions", "logs", done, "--follow", "-o", "json").stdout)
    assert [e["event"] for e in events] == ["log", "log", "log", "terminal"]
    assert all(e["command"] == "executions.logs" for e in events)
    assert events[-1]["item"] == {
        "status": "completed",
        "message": "Execution completed successfully",
    }


def test_follow_failed_shows_the_retry_hint(invoke: Invoke, flows: str, project_dir: Path) -> None:
    (project_dir / "FAIL").touch()
    exec_id = run_flow(f"{flows}:content_pipeline").exec_id
    result = invoke("executions", "logs", exec_id, "--follow")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-4:] == [
        "[Execution failed: flag file present]",
        "To retry this failed execution, run:",
        "",
        f"  kitaru executions retry {exec_id}",
    ]
    events = json_lines(invoke("executions", "logs", exec_id, "--follow", "-o", "json").stdout)
    assert events[-1]["item"] == {
        "status": "failed",
        "message": "flag file present",
        "recovery_command": f"kitaru executions retry {exec_id}",
    }


def test_follow_waiting_stops_after_the_banner(invoke: Invoke, flows: str) -> None:
    exec_id = run_flow(f"{flows}:approval").exec_id
    result = invoke("executions", "logs", exec_id, "--follow")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "researching AI\n[Execution is waiting for input on: approve]\n"
    events = json_lines(invoke("executions", "logs", exec_id, "--follow", "-o", "json").stdout)
    assert events[-1] == {
        "command": "executions.logs",
        "event": "waiting",
        "item": {"wait_name": "approve", "wait_id": f"{exec_id}.w2", "question": "Ship it?"},
    }


def test_follow_cancelled(invoke: Invoke, flows: str) -> None:
    exec_id = run_flow(f"{flows}:approval").exec_id
    KitaruClient().executions.cancel(exec_id)
    result = invoke("executions", "logs", exec_id, "--follow")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "[Execution cancelled]"
    events = json_lines(invoke("executions", "logs", exec_id, "--follow", "-o", "json").stdout)
    assert events[-1]["item"] == {"status": "cancelled", "message": "Execution cancelled"}


def test_follow_a_live_execution(invoke: Invoke, flows: str) -> None:
    client = KitaruClient()
    exec_id = client.executions.run(
        f"{flows}:ticker", args={"n": 4, "delay": 0.15}, detach=True
    ).exec_id
    result = invoke("executions", "logs", exec_id[:10], "--follow", "--interval", "0.05")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "tick 0\ntick 1\ntick 2\ntick 3\n[Execution completed successfully]\n"


def test_follow_a_live_execution_json(invoke: Invoke, flows: str) -> None:
    client = KitaruClient()
    exec_id = client.executions.run(
        f"{flows}:ticker", args={"n": 3, "delay": 0.1}, detach=True
    ).exec_id
    result = invoke("executions", "logs", exec_id, "--follow", "--interval", "0.05", "-o", "json")
    assert result.exit_code == 0, result.stderr
    events = json_lines(result.stdout)  # every line is one JSON document
    assert [e["item"]["message"] for e in events if e["event"] == "log"] == [
        "tick 0",
        "tick 1",
        "tick 2",
    ]
    assert events[-1]["event"] == "terminal"


def test_follow_goes_on_while_the_runner_polls_a_wait(invoke: Invoke, flows: str) -> None:
    client = KitaruClient()
    exec_id = client.executions.run(f"{flows}:approval", args={"timeout": 30}, detach=True).exec_id

    def answer() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not client.executions.pending_waits(exec_id):
            time.sleep(0.05)
        time.sleep(0.3)  # let the follow announce the wait first
        client.executions.input(exec_id, wait="approve", value=True)

    answering = threading.Thread(target=answer)
    answering.start()
    try:
        result = invoke("executions", "logs", exec_id, "--follow", "--interval", "0.05")
    finally:
        answering.join()
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[Execution is waiting for input on: approve]" in lines
    assert lines.index("[Execution is waiting for input on: approve]") < lines.index(
        "approved: True"
    )
    assert lines[-1] == "[Execution completed successfully]"


def test_follow_interrupted(invoke: Invoke, done: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import kitaru.client

    def interrupted(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(kitaru.client._Executions, "logs", interrupted)
    result = invoke("executions", "logs", done, "--follow")
    assert result.exit_code == 1
    assert result.stdout == "[Log follow interrupted]\n"
    result = invoke("executions", "logs", done, "--follow", "-o", "json")
    assert result.exit_code == 1
    assert json_lines(result.stdout) == [
        {
            "command": "executions.logs",
            "event": "interrupted",
            "item": {"message": "Log follow interrupted"},
        }
    ]
