"""Wait timeouts, answers in time, resume (also from another process) and its preconditions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import wait_flows as wf
from wait_helpers import Background, state, wait_for_pending, wait_record, wait_until

from kitaru.errors import KitaruStateError
from kitaru.models import ExecutionStatus
from kitaru.runtime import launch


def test_timeout_zero_returns_at_once_and_settles_waiting(client) -> None:
    started = time.monotonic()
    handle = wf.gate_flow.run("bool", 0)
    assert time.monotonic() - started < 5
    assert handle.status == ExecutionStatus.WAITING
    with pytest.raises(KitaruStateError) as info:
        handle.wait()
    message = str(info.value)
    assert f"kitaru executions input {handle.exec_id} --value <json>" in message
    assert f"kitaru executions resume {handle.exec_id}" in message
    with pytest.raises(KitaruStateError):
        handle.get()
    execution = client.executions.get(handle.exec_id)
    assert execution.status == ExecutionStatus.WAITING
    assert execution.pending_wait is not None
    assert execution.pending_wait.name == "approve"
    assert execution.pending_wait.schema == {"type": "boolean"}
    assert state(handle.exec_id)["runner"] is None
    assert wf.effects() == []


def test_input_then_resume_from_the_client_completes(client) -> None:
    handle = wf.gate_flow.run("bool", 0)
    after_input = client.executions.input(handle.exec_id, wait="approve", value=True)
    assert after_input.status == ExecutionStatus.WAITING
    assert after_input.pending_wait is None
    resumed = client.executions.resume(handle.exec_id)
    assert resumed.status in (ExecutionStatus.RUNNING, ExecutionStatus.COMPLETED)
    result = handle.wait(timeout=30)
    assert result["value"] is True
    assert result["type"] == "bool"
    assert wf.effects() == ["after:bool"]
    assert client.executions.get(handle.exec_id).status == ExecutionStatus.COMPLETED


ANSWER_FROM_ELSEWHERE = textwrap.dedent(
    """
    import sys
    from kitaru.client import KitaruClient
    client = KitaruClient()
    exec_id = sys.argv[1]
    client.executions.input(exec_id, wait="approve", value={"notes": "far", "major_version": 3})
    print(client.executions.resume(exec_id).status.value)
    """
)


def test_answer_and_resume_from_another_process(client, project_dir) -> None:
    handle = wf.gate_flow.run("model", 0)
    assert handle.status == ExecutionStatus.WAITING
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env["KITARU_INTERACTIVE"] = "0"
    done = subprocess.run(
        [sys.executable, "-c", ANSWER_FROM_ELSEWHERE, handle.exec_id],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("running", "completed")
    result = handle.wait(timeout=30)
    assert result["type"] == "Release"
    assert result["value"] == wf.Release(notes="far", major_version=3)
    assert wf.effects() == ["after:model"]


def test_answer_in_time_continues_the_same_process(client) -> None:
    run = Background(lambda: wf.gate_flow.run("int", 30))
    exec_id, _ = wait_for_pending(client, "approve")
    assert client.executions.get(exec_id).status == ExecutionStatus.WAITING
    client.executions.input(exec_id, wait="approve", value=41)
    outcome = run.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["status"] == "completed"
    assert outcome["result"]["value"] == 41
    assert launch.launched_runners() == []
    final = state(exec_id)
    assert final["status"] == "completed"
    assert final["runner"] is None


def test_resume_with_a_pending_wait_is_refused(client) -> None:
    handle = wf.gate_flow.run("bool", 0)
    with pytest.raises(KitaruStateError) as info:
        client.executions.resume(handle.exec_id)
    assert str(info.value) == (
        f"Resolve pending wait input before resuming execution '{handle.exec_id}'."
    )
    assert client.executions.get(handle.exec_id).status == ExecutionStatus.WAITING


def test_resume_of_a_completed_execution_is_refused(client) -> None:
    handle = wf.pipeline.run("t")
    assert handle.status == ExecutionStatus.COMPLETED
    with pytest.raises(KitaruStateError) as info:
        client.executions.resume(handle.exec_id)
    assert str(info.value) == (
        f"Only paused executions can be resumed. Execution '{handle.exec_id}' is currently "
        "'completed'."
    )


def test_resume_while_the_runner_still_polls_is_refused(client) -> None:
    run = Background(lambda: wf.gate_flow.run("bool", 30))
    exec_id, _ = wait_for_pending(client, "approve")
    try:
        with pytest.raises(KitaruStateError):
            client.executions.resume(exec_id)
        client.executions.input(exec_id, wait="approve", value=False)
        # Input alone is enough; a resume now (wherever the runner is) is refused.
        with pytest.raises(KitaruStateError):
            client.executions.resume(exec_id)
    finally:
        if client.executions.pending_waits(exec_id):
            client.executions.abort_wait(exec_id, wait="approve")
    outcome = run.join()
    assert outcome["result"]["value"] is False
    assert launch.launched_runners() == []


def test_conversion_failure_on_resume_settles_back_to_waiting(client) -> None:
    handle = wf.gate_flow.run("strict", 0)
    client.executions.input(handle.exec_id, wait="approve", value={"notes": "bad"})
    client.executions.resume(handle.exec_id)

    def back_to_waiting():
        current = state(handle.exec_id)
        return current["status"] == "waiting" and current["runner"] is None

    wait_until(back_to_waiting, what="the resumed runner to settle")
    for proc in launch.launched_runners():
        proc.wait(timeout=20)
    record = wait_record(handle.exec_id)
    assert record["status"] == "pending"
    assert "notes must not be 'bad'" in record["error"]
    with pytest.raises(KitaruStateError):
        handle.wait()
    client.executions.input(handle.exec_id, wait="approve", value={"notes": "good"})
    client.executions.resume(handle.exec_id)
    result = handle.wait(timeout=30)
    assert result["value"] == wf.StrictRelease(notes="good")
    assert wait_record(handle.exec_id)["error"] is None
