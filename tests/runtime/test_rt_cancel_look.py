"""When a running flow notices a cancel: at once for its own process, within 10 ms otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rt_helpers import exec_dir

import kitaru
from kitaru import checkpoint, flow
from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.errors import KitaruExecutionError
from kitaru.runtime import engine
from kitaru.store import Store
from kitaru.store.atomic import write_atomic
from kitaru.store.records import dump_json, read_json_record


class FrozenClock:
    """Stands in for the engine's ``time``: ``monotonic`` moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


CLOCK = FrozenClock()
ran: list[str] = []


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    CLOCK.now = 1000.0
    ran.clear()
    monkeypatch.setattr(engine, "time", CLOCK)
    yield


def _cancel_as_another_process(exec_id: str) -> None:
    """Set ``cancel_requested`` as a ``kitaru executions cancel`` process would.

    Written straight to the file, so this process's count of state writes does not change.
    """
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
    note("within 10 ms")
    CLOCK.now += engine.CANCEL_LOOK_INTERVAL
    return note("10 ms later")


def _assert_cancelled(handle: Any) -> None:
    with pytest.raises(KitaruExecutionError) as caught:
        handle.wait(timeout=5)
    assert caught.value.status == "cancelled"
    assert KitaruClient().executions.get(handle.exec_id).status == ExecutionStatus.CANCELLED


def test_a_cancel_from_the_flows_own_process_stops_the_very_next_checkpoint() -> None:
    _assert_cancelled(cancelled_by_itself.run())
    assert ran == ["before", "cancel by client"]  # the clock never moved


def test_a_cancel_from_another_process_is_seen_once_10_ms_have_passed() -> None:
    _assert_cancelled(cancelled_from_outside.run())
    assert ran == ["cancel by file", "within 10 ms"]


def test_fast_checkpoints_do_not_stat_state_json_at_every_boundary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks: list[str] = []
    original = Store.state_signature

    def counted(self: Store, exec_id: str) -> tuple[int, int, int]:
        looks.append(exec_id)
        return original(self, exec_id)

    monkeypatch.setattr(Store, "state_signature", counted)

    @flow
    def many() -> int:
        for i in range(20):
            note(f"n{i}")
        CLOCK.now += engine.CANCEL_LOOK_INTERVAL
        note("10 ms later")
        return 1

    assert many.run().wait() == 1
    assert len(ran) == 21
    assert len(looks) == 2  # at the first boundary, and at the first one 10 ms after it


@flow
def cancelled_before_a_wait() -> str:
    cancel_me("file")
    return kitaru.wait(name="approve", question="ok?", timeout=0)


def test_a_wait_never_opens_on_an_execution_being_cancelled() -> None:
    handle = cancelled_before_a_wait.run()
    _assert_cancelled(handle)
    assert KitaruClient().executions.pending_waits(handle.exec_id) == []
    assert not (exec_dir(handle.exec_id) / "waits").exists()
