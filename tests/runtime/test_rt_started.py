"""A call's record is written once, when it ends; until then ``started.jsonl`` shows it running."""

from __future__ import annotations

import json
import threading
from typing import Any

from rt_helpers import call_files, call_records, exec_dir

from kitaru import checkpoint, flow
from kitaru.client import ExecutionStatus, KitaruClient

ENTERED = threading.Event()
GATE = threading.Event()


@checkpoint
def slow(x: int) -> int:
    ENTERED.set()
    assert GATE.wait(10)
    return x + 1


@checkpoint
def quick(x: int) -> int:
    return x * 2


@flow
def pair(x: int) -> int:
    return quick(slow(x))


def _start_lines(exec_id: str) -> list[dict[str, Any]]:
    raw = (exec_dir(exec_id) / "started.jsonl").read_text()
    return [json.loads(line) for line in raw.splitlines()]


def test_a_running_call_is_visible_before_it_has_a_record() -> None:
    ENTERED.clear()
    GATE.clear()
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(value=pair.run(1).wait()))
    worker.start()
    try:
        assert ENTERED.wait(10)
        execution = KitaruClient().executions.latest(flow="pair")
        assert execution.status == ExecutionStatus.RUNNING
        [call] = execution.checkpoints
        assert (call.name, call.invocation_id, call.status) == ("slow", "slow", "running")
        assert call.started_at is not None and call.ended_at is None
        assert call.attempts == []
        # Nothing is in calls/ yet: a call costs one record write, when it ends.
        assert call_files(execution.exec_id) == []
    finally:
        GATE.set()
        worker.join(10)
    assert outcome["value"] == 4
    records = call_records(execution.exec_id)
    assert [(r["name"], r["status"]) for r in records] == [
        ("slow", "completed"),
        ("quick", "completed"),
    ]
    starts = _start_lines(execution.exec_id)
    assert [(s["seq"], s["invocation_id"], s["attempt"]) for s in starts] == [
        (1, "slow", 1),
        (2, "quick", 1),
    ]
    finished = KitaruClient().executions.get(execution.exec_id)
    assert [c.status for c in finished.checkpoints] == ["completed", "completed"]


def test_reused_calls_add_no_start_lines() -> None:
    GATE.set()
    first = pair.run(2)
    assert first.wait() == 6
    # A second run with equal inputs is served from the cache: recorded, never started.
    second = pair.run(2)
    assert second.wait() == 6
    assert not (exec_dir(second.exec_id) / "started.jsonl").exists()
    assert [r["cached_from"] is not None for r in call_records(second.exec_id)] == [True, True]
