"""Aborting and cancelling waits; how ``input``/``abort_wait`` find the wait they mean."""

from __future__ import annotations

import threading
import time

import pytest
import wait_flows as wf
from wait_helpers import (
    Background,
    call_records,
    exec_ids,
    state,
    wait_for_pending,
    wait_record,
    wait_until,
)

from kitaru.errors import (
    KitaruExecutionError,
    KitaruStateError,
    KitaruUsageError,
    KitaruWaitValidationError,
)
from kitaru.models import ExecutionStatus


def test_abort_wait_of_a_polling_runner_cancels_the_execution(client) -> None:
    run = Background(lambda: wf.gate_flow.run("bool", 30))
    exec_id, _ = wait_for_pending(client, "approve")
    execution = client.executions.abort_wait(exec_id, wait="approve")
    assert execution.status == ExecutionStatus.CANCELLED
    outcome = run.join()
    assert outcome["status"] == "cancelled"
    assert isinstance(outcome["error"], KitaruExecutionError)
    assert "retry" not in str(outcome["error"])
    assert wait_record(exec_id)["status"] == "aborted"
    assert [c["name"] for c in call_records(exec_id)] == []
    assert wf.effects() == []
    final = client.executions.get(exec_id)
    assert final.status == ExecutionStatus.CANCELLED
    assert final.failure is None
    assert client.executions.pending_waits(exec_id) == []


def test_abort_wait_of_a_settled_waiting_execution(client) -> None:
    handle = wf.gate_flow.run("bool", 0)
    execution = client.executions.abort_wait(handle.exec_id, wait=f"{handle.exec_id}.w1")
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.pending_wait is None
    assert wait_record(handle.exec_id)["status"] == "aborted"
    with pytest.raises(KitaruExecutionError):
        handle.wait()
    with pytest.raises(KitaruStateError):
        client.executions.resume(handle.exec_id)
    assert call_records(handle.exec_id) == []


@pytest.mark.parametrize("how", ["abort_wait", "cancel"])
def test_ended_polling_runner_leaves_no_runner_in_state(client, how) -> None:
    run = Background(lambda: wf.gate_flow.run("bool", 30))
    exec_id, _ = wait_for_pending(client, "approve")
    if how == "abort_wait":
        client.executions.abort_wait(exec_id, wait="approve")
    else:
        client.executions.cancel(exec_id)
    assert run.join()["status"] == "cancelled"
    assert state(exec_id)["runner"] is None


def test_cancel_of_a_settled_waiting_execution_is_immediate(client) -> None:
    handle = wf.gate_flow.run("bool", 0)
    started = time.monotonic()
    execution = client.executions.cancel(handle.exec_id)
    assert time.monotonic() - started < 2
    assert execution.status == ExecutionStatus.CANCELLED
    assert client.executions.pending_waits(handle.exec_id) == []
    assert wait_record(handle.exec_id)["status"] == "aborted"
    with pytest.raises(KitaruStateError):
        client.executions.input(handle.exec_id, wait="approve", value=True)
    with pytest.raises(KitaruStateError):
        client.executions.cancel(handle.exec_id)


def test_cancel_of_a_polling_runner_is_immediate(client) -> None:
    run = Background(lambda: wf.gate_flow.run("bool", 30))
    exec_id, _ = wait_for_pending(client, "approve")
    started = time.monotonic()
    execution = client.executions.cancel(exec_id)
    assert execution.status == ExecutionStatus.CANCELLED
    outcome = run.join(10)
    assert time.monotonic() - started < 5
    assert outcome["status"] == "cancelled"
    assert wf.effects() == []
    assert wait_record(exec_id)["status"] == "aborted"


def test_cancel_while_the_runner_moves_into_a_wait(client) -> None:
    """Cancel decides under the execution lock, so a runner entering a wait cannot make it fail."""
    wf.BLOCK.clear()
    wf.BLOCKED.clear()
    run = Background(lambda: wf.block_then_wait_flow.run())
    assert wf.BLOCKED.wait(20)
    exec_id = wait_until(lambda: exec_ids()[0] if exec_ids() else None)
    release = threading.Timer(0.2, wf.BLOCK.set)  # the runner heads for its wait mid-cancel
    release.start()
    try:
        execution = client.executions.cancel(exec_id, timeout=10)
    finally:
        release.join()
        wf.BLOCK.set()
        run.join()
    assert execution.status == ExecutionStatus.CANCELLED
    assert client.executions.pending_waits(exec_id) == []


# -- selectors ------------------------------------------------------------------------------------


def test_input_selects_by_name_and_by_wait_id(client) -> None:
    first = wf.gate_flow.run("int", 0)
    second = wf.gate_flow.run("int", 0)
    client.executions.input(first.exec_id, wait=" approve ", value=1)
    client.executions.input(second.exec_id, wait=f"{second.exec_id}.w1", value=2)
    assert wait_record(first.exec_id)["value"] == 1
    assert wait_record(second.exec_id)["value"] == 2


def test_input_with_no_pending_waits(client) -> None:
    handle = wf.gate_flow.run("int", 0)
    client.executions.input(handle.exec_id, wait="approve", value=1)
    with pytest.raises(KitaruStateError) as info:
        client.executions.input(handle.exec_id, wait="approve", value=2)
    assert str(info.value) == f"Execution '{handle.exec_id}' has no pending waits to resolve."
    with pytest.raises(KitaruStateError) as info:
        client.executions.abort_wait(handle.exec_id, wait="approve")
    assert "has no pending waits" in str(info.value)
    done = wf.pipeline.run("t")
    with pytest.raises(KitaruStateError) as info:
        client.executions.input(done.exec_id, wait="approve", value=True)
    assert "has no pending waits" in str(info.value)
    assert wait_record(handle.exec_id)["value"] == 1


def test_input_with_an_unknown_wait_name(client) -> None:
    handle = wf.gate_flow.run("int", 0)
    with pytest.raises(KitaruStateError) as info:
        client.executions.input(handle.exec_id, wait="x", value=1)
    assert f"Execution '{handle.exec_id}' has no pending wait 'x'" in str(info.value)
    assert "approve" in str(info.value)
    with pytest.raises(KitaruStateError) as info:
        client.executions.abort_wait(handle.exec_id, wait="x")
    assert "no pending wait 'x'" in str(info.value)
    assert wait_record(handle.exec_id)["status"] == "pending"


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_input_with_a_blank_selector_is_a_usage_error(client, blank) -> None:
    handle = wf.gate_flow.run("int", 0)
    with pytest.raises(KitaruUsageError) as info:
        client.executions.input(handle.exec_id, wait=blank, value=1)
    assert not isinstance(info.value, KitaruWaitValidationError)
    with pytest.raises(KitaruUsageError):
        client.executions.abort_wait(handle.exec_id, wait=blank)
    assert wait_record(handle.exec_id)["status"] == "pending"


def test_blank_selector_is_a_usage_error_even_without_pending_waits(client) -> None:
    done = wf.pipeline.run("t")
    with pytest.raises(KitaruUsageError):
        client.executions.input(done.exec_id, wait="  ", value=True)
