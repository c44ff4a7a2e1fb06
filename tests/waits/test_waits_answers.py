"""Answering waits: validation with nothing written, races, runner-side conversion failures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import wait_flows as wf
from wait_helpers import Background, wait_files, wait_for_pending, wait_record, wait_until

from kitaru.errors import KitaruStateError, KitaruUsageError, KitaruWaitValidationError
from kitaru.models import ExecutionStatus


def _bytes(exec_id: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in wait_files(exec_id)}


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("kind", "answer", "error", "needle"),
    [
        ("bool", "yes", KitaruWaitValidationError, "failed validation"),
        ("int", 1.5, KitaruWaitValidationError, "failed validation"),
        ("model", {"notes": "n"}, KitaruWaitValidationError, "major_version"),
        ("model", {"notes": "n", "major_version": "two"}, KitaruWaitValidationError, "two"),
        ("raw", {"n": "x"}, KitaruWaitValidationError, "failed validation"),
        ("str", "x" * (2 * 1024 * 1024), KitaruUsageError, "1 MiB"),
        ("list", _nested(65), KitaruUsageError, "deeper than 64"),
        ("none", {"x": object()}, KitaruUsageError, "JSON"),
    ],
)
def test_invalid_answer_is_rejected_with_nothing_written(
    client, kind, answer, error, needle
) -> None:
    handle = wf.gate_flow.run(kind, 0)
    before = _bytes(handle.exec_id)
    state_before = (Path(".kitaru/executions") / handle.exec_id / "state.json").read_bytes()
    with pytest.raises(error) as info:
        client.executions.input(handle.exec_id, wait="approve", value=answer)
    assert needle in str(info.value)
    assert _bytes(handle.exec_id) == before
    state_after = (Path(".kitaru/executions") / handle.exec_id / "state.json").read_bytes()
    assert state_after == state_before
    execution = client.executions.get(handle.exec_id)
    assert execution.status == ExecutionStatus.WAITING
    assert execution.pending_wait is not None


def test_wrong_type_message_names_the_wait_and_execution(client) -> None:
    handle = wf.gate_flow.run("bool", 0)
    with pytest.raises(KitaruWaitValidationError) as info:
        client.executions.input(handle.exec_id, wait="approve", value="yes")
    assert str(info.value).startswith(
        f"Wait input failed validation for 'approve' on execution '{handle.exec_id}': "
    )
    assert isinstance(info.value, KitaruUsageError)


def test_nesting_of_exactly_64_is_accepted(client) -> None:
    handle = wf.gate_flow.run("list", 0)
    client.executions.input(handle.exec_id, wait="approve", value=_nested(64))
    assert wait_record(handle.exec_id)["status"] == "resolved"


def test_eight_threads_answering_at_once_one_wins(client) -> None:
    handle = wf.gate_flow.run("int", 0)
    barrier = threading.Barrier(8)
    results: dict[int, str] = {}

    def answer(value: int) -> None:
        barrier.wait()
        try:
            client.executions.input(handle.exec_id, wait="approve", value=value)
            results[value] = "ok"
        except KitaruStateError:
            results[value] = "state"
        except Exception as exc:  # reported by the assertion
            results[value] = repr(exc)

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [v for v, r in results.items() if r == "ok"]
    assert len(results) == 8
    assert len(winners) == 1, results
    assert all(r in ("ok", "state") for r in results.values()), results
    record = wait_record(handle.exec_id)
    assert record["status"] == "resolved"
    assert record["value"] == winners[0]


RACER = textwrap.dedent(
    """
    import os, sys, time
    from kitaru.client import KitaruClient
    from kitaru.errors import KitaruStateError
    exec_id, value, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = KitaruClient()
    client.executions.get(exec_id)
    deadline = time.monotonic() + 20
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)
    try:
        client.executions.input(exec_id, wait="approve", value=value)
        print("ok")
    except KitaruStateError:
        print("state")
    """
)


def test_four_processes_answering_at_once_one_wins(client, project_dir, tmp_path) -> None:
    handle = wf.gate_flow.run("int", 0)
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, handle.exec_id, str(i), str(go)],
            cwd=project_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        time.sleep(1.0)  # let them import and get ready
        go.write_text("go")
        outputs = [p.communicate(timeout=30) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    said = [out.strip() for out, _err in outputs]
    assert sorted(said) == ["ok", "state", "state", "state"], outputs
    winner = said.index("ok")
    assert wait_record(handle.exec_id)["value"] == winner


def test_runner_side_conversion_failure_reopens_the_wait(client) -> None:
    run = Background(lambda: wf.gate_flow.run("strict", 30))
    exec_id, _ = wait_for_pending(client, "approve")
    # Passes the JSON Schema (any string), so the client accepts it ...
    client.executions.input(exec_id, wait="approve", value={"notes": "bad"})

    # ... but the runner's pydantic validator refuses it: the wait is pending again.
    def reopened():
        record = wait_record(exec_id)
        return record if record["status"] == "pending" and record["error"] else None

    record = wait_until(reopened, what="the wait to be reopened")
    assert "notes must not be 'bad'" in record["error"]
    assert record["value"] is None
    assert [w.name for w in client.executions.pending_waits(exec_id)] == ["approve"]
    assert client.executions.get(exec_id).status == ExecutionStatus.WAITING
    assert run.thread.is_alive()
    assert wf.effects() == []
    client.executions.input(exec_id, wait="approve", value={"notes": "fine"})
    outcome = run.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"]["value"] == wf.StrictRelease(notes="fine")
    assert wait_record(exec_id)["error"] is None


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_float_answer_is_rejected(client, value) -> None:
    handle = wf.gate_flow.run("float", 0)
    before = _bytes(handle.exec_id)
    with pytest.raises(KitaruUsageError):
        client.executions.input(handle.exec_id, wait="approve", value=value)
    assert _bytes(handle.exec_id) == before
