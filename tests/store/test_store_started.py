"""``started.jsonl``: how start lines and call records combine into what readers see."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from store_helpers import add_call, make_execution

from kitaru.store import Store, now_iso
from kitaru.store.check import check_store


def _start(store: Store, exec_id: str, seq: int, attempt: int = 1, inv: str | None = None) -> None:
    stream = store.start_stream(exec_id)
    try:
        line = {
            "seq": seq,
            "invocation_id": inv or f"step_{seq}",
            "name": "step",
            "checkpoint_type": None,
            "attempt": attempt,
            "started_at": now_iso(),
        }
        stream.write_line(orjson.dumps(line))
    finally:
        stream.close()


def _line(**changes: object) -> bytes:
    line = {
        "seq": 3,
        "invocation_id": "step_3",
        "name": "step",
        "checkpoint_type": None,
        "attempt": 1,
        "started_at": now_iso(),
    }
    return orjson.dumps({**line, **changes})


def _failed(store: Store, exec_id: str, seq: int) -> None:
    record = add_call(store, exec_id, seq, "unused")
    attempt = {
        "attempt_id": f"{exec_id}.c{seq}.1",
        "status": "failed",
        "started_at": record["started_at"],
        "ended_at": now_iso(),
        "metadata": {},
        "failure": {"message": "boom", "exception_type": "ValueError", "traceback": None},
    }
    store.write_call(
        exec_id, {**record, "status": "failed", "artifacts": [], "attempts": [attempt]}
    )


def _view(store: Store, exec_id: str) -> list[tuple[int, str, int]]:
    return [(c["seq"], c["status"], len(c["attempts"])) for c in store.list_calls(exec_id)]


def test_a_started_call_without_a_record_reads_as_running(store: Store) -> None:
    exec_id = make_execution(store, status="running")
    add_call(store, exec_id, 1, "done")
    _start(store, exec_id, 2)
    assert _view(store, exec_id) == [(1, "completed", 0), (2, "running", 0)]
    running = store.list_calls(exec_id)[1]
    assert running["call_id"] == f"{exec_id}.c2"
    assert running["invocation_id"] == "step_2"
    assert running["artifacts"] == [] and running["ended_at"] is None


def test_the_record_wins_once_written(store: Store) -> None:
    exec_id = make_execution(store, status="running")
    _start(store, exec_id, 1)
    add_call(store, exec_id, 1, "done")
    assert _view(store, exec_id) == [(1, "completed", 0)]


def test_a_new_attempt_after_a_failed_record_reads_as_running_with_the_earlier_attempts(
    store: Store,
) -> None:
    exec_id = make_execution(store, status="running")
    _start(store, exec_id, 1)
    _failed(store, exec_id, 1)
    assert _view(store, exec_id) == [(1, "failed", 1)]
    _start(store, exec_id, 1, attempt=2)  # a retry runs the call again
    assert _view(store, exec_id) == [(1, "running", 1)]


def test_a_crashed_runner_turns_a_started_call_into_a_failed_attempt(store: Store) -> None:
    exec_id = make_execution(store, status="running")  # no runner holds the lock
    _start(store, exec_id, 1)
    crashed = [store.crashed_call(c) for c in store.list_calls(exec_id)]
    assert [(c["status"], c["attempts"][-1]["failure"]["message"]) for c in crashed] == [
        ("failed", "the runner process exited")
    ]


def test_every_crash_of_a_call_stays_in_its_attempt_history(store: Store) -> None:
    exec_id = make_execution(store, status="running")  # no runner holds the lock
    _start(store, exec_id, 1)  # the runner died in attempt 1, left no record
    _start(store, exec_id, 1, attempt=2)  # a retry died in attempt 2 as well
    assert _view(store, exec_id) == [(1, "running", 1)]
    [crashed] = [store.crashed_call(c) for c in store.list_calls(exec_id)]
    assert [(a["attempt_id"], a["failure"]["message"]) for a in crashed["attempts"]] == [
        (f"{exec_id}.c1.1", "the runner process exited"),
        (f"{exec_id}.c1.2", "the runner process exited"),
    ]


def test_each_crashed_attempt_keeps_its_own_start_time_and_number(store: Store) -> None:
    exec_id = make_execution(store, status="running")  # no runner holds the lock
    path = store.exec_dir(exec_id) / "started.jsonl"
    lines = [
        _line(seq=1, invocation_id="step_1", attempt=n, started_at=f"2026-01-0{n}T00:00:00+00:00")
        for n in (2, 3)  # attempt 1's line was damaged and is skipped
    ]
    path.write_bytes(b"{damaged\n" + b"\n".join(lines) + b"\n")
    [crashed] = [store.crashed_call(c) for c in store.list_calls(exec_id)]
    assert [(a["attempt_id"], a["started_at"]) for a in crashed["attempts"]] == [
        (f"{exec_id}.c1.2", "2026-01-02T00:00:00+00:00"),
        (f"{exec_id}.c1.3", "2026-01-03T00:00:00+00:00"),
    ]


@pytest.mark.corrupts_store
@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_an_unreadable_start_file_leaves_the_records_readable(
    store: Store, kind: str, tmp_path: Path
) -> None:
    exec_id = make_execution(store, status="running")
    add_call(store, exec_id, 1, "done")
    path = store.exec_dir(exec_id) / "started.jsonl"
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        (tmp_path / "elsewhere.jsonl").write_bytes(_line(seq=2) + b"\n")
        path.symlink_to(tmp_path / "elsewhere.jsonl")
    assert _view(store, exec_id) == [(1, "completed", 0)]
    errors = [p for p in check_store(store)["problems"] if p["severity"] == "error"]
    assert [(p["code"], p["path"]) for p in errors] == [
        ("corrupt_record", f"executions/{exec_id}/started.jsonl")
    ]


def test_a_torn_last_line_is_skipped_and_the_next_line_starts_fresh(store: Store) -> None:
    exec_id = make_execution(store, status="running")
    _start(store, exec_id, 1)
    path = store.exec_dir(exec_id) / "started.jsonl"
    with path.open("ab") as handle:
        handle.write(b'{"seq": 2, "invocation_id": "st')  # a crash mid-append
    assert _view(store, exec_id) == [(1, "running", 0)]
    _start(store, exec_id, 3)
    assert _view(store, exec_id) == [(1, "running", 0), (3, "running", 0)]
    problems = check_store(store)["problems"]
    assert sorted((p["severity"], p["code"]) for p in problems) == [
        ("warning", "crashed_runner"),  # no runner holds this made-up execution's lock
        ("warning", "torn_log_line"),
    ]


@pytest.mark.corrupts_store
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json at all", "invalid JSON on line 1"),
        (_line(seq="1"), "'seq'"),
        (_line(seq=-5), "positive"),
        (_line(invocation_id="../x"), "invocation id"),
        (_line(started_at="t"), "ISO 8601"),
        (_line(checkpoint_type={"x": 1}), "checkpoint_type"),
        (b"[1, 2]", "not an object"),
    ],
)
def test_a_damaged_line_is_skipped_by_readers_and_an_error_for_doctor(
    store: Store, line: bytes, reason: str
) -> None:
    exec_id = make_execution(store, status="running")
    add_call(store, exec_id, 1, "done")
    path = store.exec_dir(exec_id) / "started.jsonl"
    path.write_bytes(line + b"\n")
    _start(store, exec_id, 2)
    # Start lines only say what runs: the execution stays readable (and retryable).
    assert _view(store, exec_id) == [(1, "completed", 0), (2, "running", 0)]
    errors = [p for p in check_store(store)["problems"] if p["severity"] == "error"]
    assert [(p["code"], p["path"]) for p in errors] == [
        ("corrupt_log_line", f"executions/{exec_id}/started.jsonl")
    ]
    assert reason in errors[0]["message"]
