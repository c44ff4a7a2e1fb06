"""`kitaru doctor` (check_store): what it finds, how severe, and what --fix repairs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest
from store_helpers import add_call, make_execution

from kitaru.store import Store, check
from kitaru.store.check import check_store

# These tests damage their store on purpose and check doctor's report themselves.
pytestmark = pytest.mark.corrupts_store


def _codes(result: dict) -> list[tuple[str, str]]:
    return sorted((p["severity"], p["code"]) for p in result["problems"] if not p["fixed"])


def _populated(store: Store) -> tuple[str, str]:
    """Two executions with calls (inline and blob values), logs and a cache entry."""
    first = make_execution(store)
    add_call(store, first, 1, "small")
    add_call(store, first, 2, "x" * 40_000)
    store.append_log(first, {"message": "hello"})
    store.cache_put("ab" * 32, first, 1, "step_1")
    second = make_execution(store, status="waiting", flow="other")
    store.update_state(second, lambda s: {**s, "result": store.encode("y" * 40_000)})
    return first, second


def _blob_files(store: Store) -> list[Path]:
    return sorted(p for p in (store.root / "objects").rglob("*") if p.is_file())


def test_clean_store_has_no_problems(store: Store) -> None:
    _populated(store)
    result = check_store(store)
    assert result == {"ok": True, "errors": 0, "warnings": 0, "fixed": 0, "problems": []}


def test_problem_shape(store: Store) -> None:
    first, _ = _populated(store)
    path = store.exec_dir(first) / "calls" / "0001-step_1.json"
    path.write_bytes(path.read_bytes()[:40])
    problem = check_store(store)["problems"][0]
    assert set(problem) == {"severity", "code", "path", "message", "fix", "fixed"}
    assert problem["path"] == f"executions/{first}/calls/0001-step_1.json"
    assert problem["severity"] == "error" and problem["fixed"] is False


@pytest.mark.parametrize("record", ["state.json", "execution.yaml", "calls/0001-step_1.json"])
def test_truncated_record_is_an_error(store: Store, record: str) -> None:
    first, _ = _populated(store)
    path = store.exec_dir(first) / record
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    result = check_store(store)
    assert not result["ok"]
    assert ("error", "corrupt_record") in _codes(result)
    assert f"executions/{first}/{record}" in {p["path"] for p in result["problems"]}


def test_schema_invalid_records_are_errors(store: Store) -> None:
    first, second = _populated(store)
    state = store.exec_dir(first) / "state.json"
    state.write_bytes(orjson.dumps({**orjson.loads(state.read_bytes()), "status": "bogus"}))
    wait_dir = store.exec_dir(second) / "waits"
    wait_dir.mkdir(mode=0o700)
    (wait_dir / "0001-ask.json").write_bytes(b'{"schema_version": 1, "seq": 1}')
    (store.root / "format.json").write_bytes(b"[]")
    (store.root / "config.yaml").write_bytes(b"- a list\n")
    cache_file = store.cache_path("ab" * 32)
    cache_file.unlink()
    cache_file.write_bytes(b'{"schema_version": 1, "call_id": "not-a-call"}')
    result = check_store(store)
    paths = {p["path"] for p in result["problems"] if p["code"] == "corrupt_record"}
    assert paths == {
        f"executions/{first}/state.json",
        f"executions/{second}/waits/0001-ask.json",
        "format.json",
        "config.yaml",
    }
    assert result["errors"] == 4
    # A cache entry is derived and never fsynced: unreadable, it is only a miss (a warning).
    bad_cache = [p for p in result["problems"] if p["code"] == "bad_cache_entry"]
    assert [p["path"] for p in bad_cache] == [f"cache/{'ab' * 32}"]
    assert bad_cache[0]["severity"] == "warning"


def test_blob_hash_mismatch_is_an_error(store: Store) -> None:
    _populated(store)
    blob = _blob_files(store)[0]
    data = bytearray(blob.read_bytes())
    data[10] ^= 0xFF
    blob.write_bytes(bytes(data))
    result = check_store(store)
    assert _codes(result) == [("error", "blob_hash_mismatch")]
    assert result["problems"][0]["path"] == blob.relative_to(store.root).as_posix()


def test_missing_blob_is_a_dangling_reference(store: Store) -> None:
    first, second = _populated(store)
    for blob in _blob_files(store):
        blob.unlink()
    result = check_store(store)
    assert _codes(result) == [("error", "dangling_reference")] * 2
    assert {p["path"] for p in result["problems"]} == {
        f"executions/{first}/calls/0002-step_2.json",
        f"executions/{second}/state.json",
    }


def test_contradicting_index_marker_is_an_error_and_fix_rebuilds(store: Store) -> None:
    first, _ = _populated(store)
    os.rename(Path(store.index.status_dir("completed"), first), store.root / "moved")
    os.unlink(store.root / "moved")
    store.index.add(store.index.status_dir("failed"), first)
    result = check_store(store)
    assert _codes(result) == [("error", "index_contradicts_state")]
    assert result["problems"][0]["path"] == f"index/status/completed/{first}"
    fixed = check_store(store, fix=True)
    assert fixed["ok"] and fixed["fixed"] == 1 and fixed["problems"][0]["fixed"]
    assert first in store.candidate_ids(status="completed")
    assert first not in store.candidate_ids(status="failed")
    assert check_store(store)["problems"] == []


def test_a_status_change_cut_by_a_power_loss_still_lists_right(store: Store) -> None:
    """The new marker is not fsynced: the old one (running or waiting) may be all that is left."""
    from kitaru.client import ExecutionStatus, KitaruClient

    first, second = _populated(store)  # completed and waiting
    store.index.remove(store.index.status_dir("completed"), first)
    store.index.add(store.index.status_dir("running"), first)
    listed = KitaruClient().executions.list(status="completed")
    assert [e.exec_id for e in listed] == [first]
    assert [e.exec_id for e in KitaruClient().executions.list(status="waiting")] == [second]
    assert [e.status for e in KitaruClient().executions.list()] == [
        ExecutionStatus.WAITING,
        ExecutionStatus.COMPLETED,
    ]
    result = check_store(store)
    assert result["ok"]
    assert _codes(result) == [
        ("warning", "index_missing_marker"),
        ("warning", "index_stale_marker"),
    ]
    assert check_store(store, fix=True)["fixed"] == 2
    assert check_store(store)["problems"] == []


def test_flow_marker_under_the_wrong_flow_is_an_error(store: Store) -> None:
    first, _ = _populated(store)
    store.index.remove(store.index.flow_dir("demo"), first)
    store.index.add(store.index.flow_dir("other"), first)
    assert _codes(check_store(store)) == [("error", "index_contradicts_state")]


def test_stale_missing_and_orphan_markers_are_warnings(store: Store) -> None:
    first, second = _populated(store)
    store.index.add(store.index.status_dir("running"), first)  # stale, beside the right one
    store.index.remove(store.index.flow_dir("other"), second)  # missing
    store.index.add(store.index.status_dir("failed"), "kr-0000000000000")  # no execution
    result = check_store(store)
    assert result["ok"]
    assert _codes(result) == [
        ("warning", "index_missing_marker"),
        ("warning", "index_stale_marker"),
        ("warning", "orphan_marker"),
    ]
    assert check_store(store, fix=True)["fixed"] == 3
    assert check_store(store)["problems"] == []
    assert store.candidate_ids(flow="other") == [second]


def test_temp_file_is_a_warning_and_fix_removes_it(store: Store) -> None:
    first, _ = _populated(store)
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    temp = store.exec_dir(first) / f".state.json.{dead_pid}.deadbeef.tmp"
    temp.write_bytes(b'{"half')
    os.chmod(temp, 0o600)
    result = check_store(store)
    assert result["ok"] and _codes(result) == [("warning", "temp_file")]
    fixed = check_store(store, fix=True)
    assert fixed["fixed"] == 1 and not temp.exists()
    assert check_store(store)["problems"] == []


def test_fresh_temp_file_of_a_live_writer_is_kept(store: Store) -> None:
    temp = store.root / f".config.yaml.{os.getpid()}.cafe0000.tmp"
    temp.write_bytes(b"x")
    os.chmod(temp, 0o600)
    assert check_store(store, fix=True)["fixed"] == 0 and temp.exists()
    old = time.time() - 3600
    os.utime(temp, (old, old))
    assert check_store(store, fix=True)["fixed"] == 1 and not temp.exists()


def test_doctor_finds_all_four_kinds_and_fix_leaves_no_errors(store: Store) -> None:
    """A truncated record, a bad blob, a contradicting marker and a temp file, together."""
    first, second = _populated(store)
    call = store.exec_dir(first) / "calls" / "0001-step_1.json"
    call.write_bytes(call.read_bytes()[:25])
    blob = _blob_files(store)[0]
    blob.write_bytes(b"not the original bytes")
    store.index.remove(store.index.status_dir("waiting"), second)
    store.index.add(store.index.status_dir("completed"), second)
    (store.root / "objects" / ".x.999999999.aa.tmp").write_bytes(b"")
    result = check_store(store)
    assert _codes(result) == [
        ("error", "blob_hash_mismatch"),
        ("error", "corrupt_record"),
        ("error", "index_contradicts_state"),
        # the call's cache entry is a hard link to the record truncated in place
        ("warning", "bad_cache_entry"),
        ("warning", "temp_file"),
    ]
    assert result["errors"] == 3 and result["warnings"] == 2 and not result["ok"]
    fixed = check_store(store, fix=True)
    # the index, the cache entry and the temp file; records and blobs are never touched
    assert fixed["fixed"] == 3
    assert call.exists()
    assert _codes(check_store(store)) == [
        ("error", "blob_hash_mismatch"),
        ("error", "corrupt_record"),
    ]
    assert store.candidate_ids(status="waiting") == [second]
    # Repair the damaged data itself (doctor never rewrites records or blobs).
    call.unlink()
    blob.unlink()
    store.update_state(first, lambda s: s)
    second_state = store.exec_dir(second) / "state.json"
    state = orjson.loads(second_state.read_bytes())
    second_state.write_bytes(orjson.dumps({**state, "result": None}))
    final = check_store(store, fix=True, grace=0)
    assert final["ok"], final["problems"]
    assert check_store(store)["errors"] == 0
    assert store.candidate_ids(status="waiting") == [second]
    assert not list(store.root.rglob("*.tmp"))


def test_fix_rebuilds_a_deleted_index(store: Store) -> None:
    first, second = _populated(store)
    store.remove_tree(store.root / "index")
    result = check_store(store)
    assert result["ok"] and result["warnings"] == 4
    assert check_store(store, fix=True)["fixed"] == 4
    assert store.candidate_ids(status="completed", flow="demo") == [first]
    assert store.candidate_ids(status="waiting", flow="other") == [second]
    assert check_store(store)["problems"] == []


def test_orphan_blob_is_a_warning_and_fix_removes_it_after_the_grace_period(store: Store) -> None:
    _populated(store)
    orphan = store.blobs.put(b"nobody points at me")
    result = check_store(store)
    assert result["ok"] and _codes(result) == [("warning", "orphan_blob")]
    assert check_store(store, fix=True)["fixed"] == 0  # fresh: maybe a write in progress
    assert check_store(store, fix=True, grace=0)["fixed"] == 1
    assert not store.blobs.path(orphan).exists()
    assert check_store(store)["problems"] == []


def test_orphan_blobs_are_kept_while_a_record_is_unreadable(store: Store) -> None:
    first, _ = _populated(store)
    store.blobs.put(b"maybe referenced by the broken record")
    (store.exec_dir(first) / "state.json").write_bytes(b"{")
    result = check_store(store, fix=True, grace=0)
    assert result["fixed"] == 0
    assert len(_blob_files(store)) == 3


def test_stale_cache_entry_is_a_warning_and_fix_removes_it(store: Store) -> None:
    first, _ = _populated(store)
    (store.exec_dir(first) / "calls" / "0001-step_1.json").unlink()
    result = check_store(store)
    assert _codes(result) == [("warning", "stale_cache_entry")]
    assert check_store(store, fix=True)["fixed"] == 1
    assert store.cache_get("ab" * 32) is None
    assert check_store(store)["problems"] == []


def test_log_lines(store: Store) -> None:
    first, _ = _populated(store)
    log = store.exec_dir(first) / "logs.jsonl"
    with open(log, "ab") as handle:
        handle.write(b'{"message": "torn')
    assert _codes(check_store(store)) == [("warning", "torn_log_line")]
    with open(log, "ab") as handle:
        handle.write(b'\n{"message": "after"}\n')
    # A cut-off object followed by later lines is what a resume after a crash leaves: a warning.
    assert _codes(check_store(store)) == [("warning", "torn_log_line")]
    with open(log, "ab") as handle:
        handle.write(b'not json at all\n{"message": "later"}\n')
    result = check_store(store)
    assert ("error", "corrupt_log_line") in _codes(result)
    assert any("line 4" in p["message"] for p in result["problems"])


def test_crashed_runner_and_incomplete_execution_are_warnings(store: Store) -> None:
    running = make_execution(store, status="running")
    store.claim_execution_id()  # a folder with no state.json
    result = check_store(store)
    assert result["ok"]
    assert _codes(result) == [("warning", "crashed_runner"), ("warning", "incomplete_execution")]
    with store.runner_lock(running):
        assert _codes(check_store(store)) == [("warning", "incomplete_execution")]


def test_symlinks_are_warnings_and_never_followed(store: Store, tmp_path: Path) -> None:
    first, _ = _populated(store)
    canary = tmp_path / "canary.json"
    canary.write_text('{"schema_version": 1}')
    os.symlink(canary, store.exec_dir(first) / "calls" / "0009-evil.json")
    os.symlink(tmp_path, store.root / "objects" / "zz")
    result = check_store(store, fix=True, grace=0)
    links = {p["path"] for p in result["problems"] if p["code"] == "symlink"}
    assert links == {f"executions/{first}/calls/0009-evil.json", "objects/zz"}
    assert not any(
        p["severity"] == "error" and "canary" in p["message"] for p in result["problems"]
    )
    assert canary.read_text() == '{"schema_version": 1}' and tmp_path.is_dir()


def test_network_filesystem_is_a_warning(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "_fs_type", lambda root: "nfs4")
    assert _codes(check_store(store)) == [("warning", "network_filesystem")]
    monkeypatch.setattr(check, "_fs_type", lambda root: "ext4")
    assert check_store(store)["problems"] == []


def test_fs_type_reads_the_mount_table(store: Store) -> None:
    if not Path("/proc/self/mounts").exists():
        pytest.skip("no /proc/self/mounts")
    assert isinstance(check._fs_type(store.root), str)


@pytest.mark.parametrize(
    ("old", "new", "synced"),
    [("running", "completed", False), ("waiting", "running", False), ("failed", "running", True)],
)
def test_a_new_status_marker_is_fsynced_only_when_listings_would_miss_the_old_one(
    store: Store, monkeypatch: pytest.MonkeyPatch, old: str, new: str, synced: bool
) -> None:
    """Listings read running and waiting markers too; leaving any other status (a retry of a
    failed run) makes the new marker durable before state.json names it."""
    import kitaru.store.atomic as atomic

    exec_id = make_execution(store, status=old)
    synced_folders: list[str] = []
    real = atomic.fsync_dir
    monkeypatch.setattr(atomic, "fsync_dir", lambda p: (synced_folders.append(str(p)), real(p)))
    store.update_state(exec_id, lambda s: {**s, "status": new})
    marker_folder = str(store.index.status_dir(new))
    assert (marker_folder in synced_folders) is synced
    assert exec_id in store.candidate_ids(status=new)
