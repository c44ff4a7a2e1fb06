"""A real format-1 store (tests/fixtures/format1) reads as before and is upgraded before a write."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.models import Execution
from kitaru.store import FORMAT, Store
from kitaru.store.check import check_store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "format1"
OLD_PROJECT = "/tmp/old1/proj"
COMPLETED, FAILED, CRASHED, WAITING = (
    "kr-1m8b71znp5xq4j",
    "kr-1m8b71zsqx7epr",
    "kr-1m8b71zytb9xy0",
    "kr-1m8b72032vj27r",
)


@pytest.fixture
def old_store(project_dir: Path) -> Path:
    """The fixture store copied into this test's project, as if it had always lived there."""
    store = project_dir / ".kitaru"
    shutil.copytree(FIXTURE / "kitaru-store", store)
    (store / "objects").mkdir(exist_ok=True)  # empty in the fixture, so git drops it
    shutil.copy(FIXTURE / "legacy_flows.py", project_dir / "legacy_flows.py")
    for spec in store.glob("executions/*/execution.yaml"):
        text = spec.read_text().replace(OLD_PROJECT, str(project_dir))
        lines = [
            f"python: {sys.executable}" if line.startswith("python:") else line
            for line in text.splitlines()
        ]
        spec.write_text("\n".join(lines) + "\n")
    return store


def _format(store: Path) -> int:
    return json.loads((store / "format.json").read_text())["format"]


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file's content hash and mtime: any write, in place or not, changes it."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _legacy_flows(project_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("legacy_flows", project_dir / "legacy_flows.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["legacy_flows"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def legacy_flows(old_store: Path, project_dir: Path):
    yield _legacy_flows(project_dir)
    sys.modules.pop("legacy_flows", None)


def test_a_format_1_store_reads_as_before_and_reading_writes_nothing(old_store: Path) -> None:
    before = _tree(old_store)
    client = KitaruClient()
    statuses = {e.exec_id: e.status for e in client.executions.list()}
    assert statuses == {
        COMPLETED: ExecutionStatus.COMPLETED,
        FAILED: ExecutionStatus.FAILED,
        CRASHED: ExecutionStatus.FAILED,  # its runner was SIGKILLed
        WAITING: ExecutionStatus.WAITING,
    }
    crashed = client.executions.get(CRASHED)
    die = crashed.checkpoints[-1]
    assert (die.name, die.status) == ("die", "failed")  # a format-1 "running" record
    assert die.attempts[-1].failure.message == "the runner process exited"
    assert client.executions.get(WAITING).pending_wait.name == "approve"
    assert [a.name for a in client.artifacts.list(COMPLETED)] == ["triple"]
    assert [e.exec_id for e in client.executions.list(status="waiting")] == [WAITING]
    report = client.project.doctor() if hasattr(client, "project") else check_store(Store.open())
    assert report["ok"]
    assert _tree(old_store) == before
    assert _format(old_store) == 1


def test_doctor_reports_a_format_1_store_and_fix_upgrades_it(old_store: Path) -> None:
    report = check_store(Store.open())
    assert report["ok"]
    assert sorted(p["code"] for p in report["problems"]) == [
        "crashed_runner",
        "legacy_cache",
        "old_format",
    ]
    fixed = check_store(Store.open(), fix=True)
    assert [(p["code"], p["fixed"]) for p in fixed["problems"]] == [
        ("old_format", True),
        ("crashed_runner", False),
    ]
    assert _format(old_store) == FORMAT
    entries = sorted((old_store / "cache").iterdir())
    assert len(entries) == 4 and all(e.is_file() for e in entries)
    home = old_store / "executions" / COMPLETED / "calls" / "0001-triple.json"
    assert any(os.path.samefile(e, home) for e in entries)  # a hard link to the call record
    assert [p["code"] for p in check_store(Store.open())["problems"]] == ["crashed_runner"]


def test_the_next_run_upgrades_the_store_and_hits_an_old_cache_entry(
    old_store: Path, legacy_flows: ModuleType
) -> None:
    handle = legacy_flows.tripling.run(2)
    assert handle.wait() == 6
    assert _format(old_store) == FORMAT
    [call] = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert call.cached_from == f"{COMPLETED}.c1"  # recorded by format 1, found by format 2
    assert not [p for p in (old_store / "cache").iterdir() if p.is_dir()]
    assert [p["code"] for p in check_store(Store.open())["problems"]] == ["crashed_runner"]


def test_a_crashed_format_1_run_is_retried_to_completion(old_store: Path) -> None:
    client = KitaruClient()
    client.executions.retry(CRASHED)
    # `die` kills its runner again: the retry ends the same way, recorded in format 2.
    execution = _settled(client, CRASHED)
    assert execution.status == ExecutionStatus.FAILED
    die = execution.checkpoints[-1]
    assert [a.failure.message for a in die.attempts] == ["the runner process exited"] * 2
    assert _format(old_store) == FORMAT
    triple = execution.checkpoints[0]
    assert (triple.status, len(triple.attempts)) == ("completed", 1)  # not run again


def _settled(client: KitaruClient, exec_id: str) -> Execution:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        execution = client.executions.get(exec_id)
        if not execution.runner_alive and execution.status != ExecutionStatus.RUNNING:
            return execution
        time.sleep(0.05)
    raise AssertionError(f"{exec_id} did not settle")


def _upgrade(root: str, start: multiprocessing.synchronize.Event) -> None:
    start.wait(10)
    Store.open_at(Path(root)).upgrade()


def test_two_processes_upgrading_at_once_both_succeed(old_store: Path) -> None:
    start = multiprocessing.Event()
    procs = [
        multiprocessing.Process(target=_upgrade, args=(str(old_store), start)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(20)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert _format(old_store) == FORMAT
    assert len(list((old_store / "cache").iterdir())) == 4
    assert [p["code"] for p in check_store(Store.open())["problems"]] == ["crashed_runner"]


def test_an_upgrade_never_follows_a_symlinked_cache_folder(old_store: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    shutil.move(old_store / "cache", outside)
    (outside / "ab").mkdir(exist_ok=True)
    (outside / "ab" / "notes.txt").write_text("keep me")
    (outside / "top.txt").write_text("keep me too")
    (old_store / "cache").symlink_to(outside)
    before = _tree(outside)
    fixed = check_store(Store.open(), fix=True)
    assert Store.open().upgrade() is False  # done by doctor --fix
    assert _tree(outside) == before
    assert ("warning", "symlink") in {(p["severity"], p["code"]) for p in fixed["problems"]}
    (old_store / "cache").unlink()
    (old_store / "cache").mkdir(mode=0o700)


def test_a_store_reached_through_a_symlink_is_upgraded(
    old_store: Path, project_dir: Path, tmp_path: Path, legacy_flows: ModuleType
) -> None:
    real = tmp_path / "real-store"
    shutil.move(old_store, real)
    old_store.symlink_to(real)
    assert legacy_flows.tripling.run(2).wait() == 6
    assert _format(real) == FORMAT
    assert [p["code"] for p in check_store(Store.open())["problems"]] == ["crashed_runner"]


def test_a_fifo_for_a_runner_lock_is_an_error_not_a_hang(old_store: Path) -> None:
    lock = old_store / "executions" / CRASHED / "runner.lock"
    lock.unlink()
    os.mkfifo(lock, 0o600)
    report = check_store(Store.open())  # would block forever opening the FIFO
    assert ("error", "corrupt_record") in {(p["severity"], p["code"]) for p in report["problems"]}
    with pytest.warns(RuntimeWarning, match="lock file is not a regular file"):
        listed = {e.exec_id for e in KitaruClient().executions.list()}
    assert COMPLETED in listed and CRASHED not in listed
    lock.unlink()
    lock.touch(mode=0o600)
