"""Concurrent writers and writers killed with SIGKILL."""

from __future__ import annotations

import multiprocessing
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import store_helpers
from store_helpers import bump_counter, make_execution

from kitaru.store import Store
from kitaru.store.atomic import is_temp_name
from kitaru.store.check import check_store
from kitaru.store.records import load_yaml, read_json_record

HELPERS = Path(store_helpers.__file__)


def test_locked_updates_from_8_processes_lose_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # KITARU_DURABILITY=fast (inherited by the children) skips fsync: the lock, not the disk,
    # is under test, and 1,600 fsynced writes would take several seconds.
    monkeypatch.setenv("KITARU_DURABILITY", "fast")
    exec_id = make_execution(store, status="running")
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=bump_counter, args=(str(store.root), exec_id, 200)) for _ in range(8)
    ]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
        assert [proc.exitcode for proc in procs] == [0] * 8
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert store.read_state(exec_id)["metadata"]["counter"] == 1600


def test_locked_updates_from_8_threads_lose_nothing(store: Store) -> None:
    exec_id = make_execution(store, status="running")
    threads = [
        threading.Thread(target=bump_counter, args=(str(store.root), exec_id, 50)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert store.read_state(exec_id)["metadata"]["counter"] == 400


_KINDS = {"state.json": "state", "calls": "call", "waits": "wait"}


def _assert_every_record_parses(root: Path) -> int:
    count = 0
    for path in (root / "executions").rglob("*"):
        if is_temp_name(path.name) or not path.is_file():
            continue
        if path.name == "execution.yaml":
            load_yaml(path.read_bytes(), path)
        elif path.suffix == ".json":
            read_json_record(path, _KINDS.get(path.name) or _KINDS[path.parent.name])
        count += 1
    for path in (root / "cache").iterdir():
        if not is_temp_name(path.name):
            read_json_record(path, "call")  # a hard link to a call record
    return count


def test_writer_killed_mid_loop_leaves_a_consistent_store(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITARU_DURABILITY", "fast")  # a kill, not a power loss: no fsync needed
    rng = random.Random(1234)
    for trial in range(6):
        proc = subprocess.Popen(
            [sys.executable, str(HELPERS), "torture", str(store.root), str(trial)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            try:
                proc.wait(timeout=rng.uniform(0.05, 0.4))  # the delay before the kill
            except subprocess.TimeoutExpired:
                pass
            assert proc.poll() is None, "the writer died on its own"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        assert _assert_every_record_parses(store.root) > 0
        result = check_store(store)
        errors = [p for p in result["problems"] if p["severity"] == "error"]
        assert errors == [], errors
        # the killed runner's executions read as crashed
        assert {p["code"] for p in result["problems"]} <= {
            "crashed_runner",
            "temp_file",
            "orphan_blob",
            "index_stale_marker",
            "incomplete_execution",
            "orphan_marker",
            "index_missing_marker",
        }
    fixed = check_store(store, fix=True, grace=0)
    assert fixed["ok"]
    after = check_store(store)
    assert after["ok"] and {p["code"] for p in after["problems"]} <= {
        "crashed_runner",
        "incomplete_execution",
    }
