"""A cancel stops a running flow at its next checkpoint boundary, and never lets a wait open."""

from __future__ import annotations

from typing import Any

import pytest
from rt_helpers import exec_dir

import kitaru
from kitaru import checkpoint, flow
from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.errors import KitaruExecutionError
from kitaru.runtime import engine
from kitaru.store.atomic import write_atomic
from kitaru.store.records import dump_json, read_json_record

ran: list[str] = []


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    ran.clear()


def _cancel_as_another_process(exec_id: str) -> None:
    """Set ``cancel_requested`` as a ``kitaru executions cancel`` process would."""
    path = exec_dir(exec_id) / "state.json"
    state = read_json_record(path, "state")
    write_atomic(path, dump_json({**state, "cancel_requested": True}), durable=False)


@checkpoint
def note(name: str) -> str:
    ran.append(name)
    return name


@checkpoint
def cancel_me(how: str) -> str:
    exec_id = kitaru.runtime._get_current_execution_id()
    if how == "client":
        KitaruClient().executions.cancel(exec_id, timeout=0)
    else:
        _cancel_as_another_process(exec_id)
    ran.append(f"cancel by {how}")
    return how


@flow
def cancelled_by_itself() -> str:
    note("before")
    cancel_me("client")
    return note("after")


@flow
def cancelled_from_outside() -> str:
    cancel_me("file")
    return note("after")


@flow
def cancelled_before_a_wait() -> str:
    cancel_me("file")
    return kitaru.wait(name="approve", question="ok?", timeout=0)


def _assert_cancelled(handle: Any) -> None:
    with pytest.raises(KitaruExecutionError) as caught:
        handle.wait(timeout=5)
    assert caught.value.status == "cancelled"
    assert KitaruClient().executions.get(handle.exec_id).status == ExecutionStatus.CANCELLED


@pytest.mark.parametrize("flow_def", [cancelled_by_itself, cancelled_from_outside])
def test_a_cancel_stops_the_very_next_checkpoint(flow_def: Any) -> None:
    _assert_cancelled(flow_def.run())
    assert "after" not in ran


def test_a_wait_never_opens_on_an_execution_being_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cancel lands after the boundary before the wait has looked for one.
    monkeypatch.setattr(engine.FlowRun, "check_cancel", lambda self: None)
    handle = cancelled_before_a_wait.run()
    _assert_cancelled(handle)
    assert KitaruClient().executions.pending_waits(handle.exec_id) == []
    assert not (exec_dir(handle.exec_id) / "waits").exists()
