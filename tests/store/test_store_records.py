"""Atomic replace, permissions, ids, format and YAML safety of the store's records."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import store_helpers
from store_helpers import add_call, make_execution

from kitaru.errors import (
    KitaruCorruptRecordError,
    KitaruNotFoundError,
    KitaruStateError,
    KitaruUsageError,
)
from kitaru.store import Store, layout
from kitaru.store.atomic import read_bytes
from kitaru.store.check import check_store
from kitaru.store.store import FORMAT

HELPERS = Path(store_helpers.__file__)


def _start(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(HELPERS), *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_reader_never_sees_a_partial_record(store: Store) -> None:
    target = store.root / "executions" / "record.json"
    proc = _start("rewrite", str(target))
    kinds: dict[str, int] = {}
    errors = 0
    try:
        reads = 0
        while reads < 5000 or len(kinds) < 2:
            reads += 1
            try:
                kind = orjson.loads(read_bytes(target))["kind"]
                kinds[kind] = kinds.get(kind, 0) + 1
            except (orjson.JSONDecodeError, FileNotFoundError, KeyError):
                errors += 1
            assert reads < 200_000, "the writer never produced both versions"
    finally:
        _stop(proc)
    assert errors == 0
    assert set(kinds) == {"small", "large"}  # the writer really rewrote it meanwhile


def _modes(root: Path) -> list[tuple[str, int]]:
    out = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            out.append((str(path.relative_to(root)), stat.S_IMODE(os.lstat(path).st_mode)))
    out.append((".", stat.S_IMODE(os.lstat(root).st_mode)))
    return out


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_files_0600_and_folders_0700_whatever_the_umask(project_dir: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        store = Store.init(project_dir)
        exec_id = make_execution(store)
        add_call(store, exec_id, 1, "x" * 40_000)  # a blob too
        store.append_log(exec_id, {"message": "hi"})
        store.cache_put("ab" * 32, exec_id, 1, "step_1")
        with store.exec_lock(exec_id):
            pass
        store.runner_alive(exec_id)
        store.update_state(exec_id, lambda s: {**s, "status": "failed"})
        modes = _modes(store.root)
    finally:
        os.umask(old)
    assert len(modes) > 15
    for rel, mode in modes:
        is_dir = (store.root / rel).is_dir()
        assert mode == (0o700 if is_dir else 0o600), (rel, oct(mode))
    assert check_store(store)["problems"] == []


def test_doctor_warns_about_group_or_world_writable_entries(store: Store) -> None:
    exec_id = make_execution(store)
    os.chmod(store.exec_dir(exec_id) / "state.json", 0o620)
    os.chmod(store.root / "objects", 0o707)
    os.chmod(store.root / "config.yaml", 0o644)  # readable by others is fine
    result = check_store(store)
    found = {(p["code"], p["path"]) for p in result["problems"]}
    assert found == {
        ("writable_by_others", f"executions/{exec_id}/state.json"),
        ("writable_by_others", "objects"),
    }
    assert result["ok"] and result["warnings"] == 2


def test_execution_ids_strictly_increase() -> None:
    ids = [layout.new_execution_id() for _ in range(10_000)]
    assert sorted(ids) == ids
    assert len(set(ids)) == len(ids)
    for exec_id in ids[:50]:
        assert layout.validate_name("execution id", exec_id) == exec_id


@pytest.mark.corrupts_store
def test_newer_format_is_refused(store: Store, project_dir: Path) -> None:
    newer = FORMAT + 1
    (store.root / "format.json").write_text(f'{{"format": {newer}}}\n')
    for opener in (Store.open, Store.find):
        with pytest.raises(KitaruStateError, match=f"format {newer}"):
            opener()
    with pytest.raises(KitaruStateError, match=f"format {newer}"):
        Store.open(str(project_dir))


@pytest.mark.corrupts_store
def test_format_json_without_format_is_corrupt(store: Store) -> None:
    (store.root / "format.json").write_text('{"version": 1}\n')
    with pytest.raises(KitaruCorruptRecordError):
        Store.open()


def test_id_prefixes_resolve(store: Store) -> None:
    ids = [make_execution(store) for _ in range(3)]
    for exec_id in ids:
        assert store.resolve_exec_id(exec_id) == exec_id
        # the shortest unique prefix, with and without "kr-"
        short = next(
            exec_id[:n]
            for n in range(4, len(exec_id) + 1)
            if sum(i.startswith(exec_id[:n]) for i in ids) == 1
        )
        assert store.resolve_exec_id(short) == exec_id
        assert store.resolve_exec_id(short.removeprefix("kr-")) == exec_id


def test_ambiguous_prefix_lists_candidates(store: Store) -> None:
    ids = [make_execution(store) for _ in range(3)]
    with pytest.raises(KitaruUsageError, match="ambiguous") as info:
        store.resolve_exec_id("kr-")
    for exec_id in ids:
        assert exec_id in str(info.value)
    with pytest.raises(KitaruUsageError, match="ambiguous"):
        store.resolve_exec_id(ids[0][3:5])  # without "kr-", shared time prefix


def test_unknown_id_is_not_found(store: Store) -> None:
    make_execution(store)
    with pytest.raises(KitaruNotFoundError):
        store.resolve_exec_id("kr-zzzzzzzz")
    with pytest.raises(KitaruNotFoundError):
        store.read_state("kr-zzzzzzzz")


@pytest.mark.corrupts_store
def test_yaml_alias_bomb_in_execution_yaml_is_corrupt(store: Store) -> None:
    exec_id = make_execution(store)
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 10):
        bomb.append(f"{chr(97 + n)}: &{chr(97 + n)} [" + ", ".join([f"*{chr(96 + n)}"] * 9) + "]")
    (store.exec_dir(exec_id) / "execution.yaml").write_text("\n".join(bomb) + "\n")
    with pytest.raises(KitaruCorruptRecordError, match="alias"):
        store.read_spec(exec_id)
    result = check_store(store)
    assert [(p["code"], p["severity"]) for p in result["problems"]] == [("corrupt_record", "error")]


@pytest.mark.corrupts_store
def test_oversized_config_yaml_is_refused(store: Store) -> None:
    lines = [f"key_{i}: {'v' * 60}" for i in range(2 * 1024 * 1024 // 70)]
    (store.root / "config.yaml").write_text("\n".join(lines) + "\n")
    assert (store.root / "config.yaml").stat().st_size >= 2 * 1000 * 1000
    with pytest.raises(KitaruCorruptRecordError, match="larger"):
        _ = Store.open().config  # read when first needed (read-only commands skip it)


@pytest.mark.corrupts_store
def test_unknown_schema_version_is_refused(store: Store) -> None:
    exec_id = make_execution(store)
    path = store.exec_dir(exec_id) / "state.json"
    state = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps({**state, "schema_version": 9}))
    with pytest.raises(KitaruCorruptRecordError, match="schema version 9"):
        store.read_state(exec_id)


def test_the_folder_lock_falls_back_to_a_lock_file_where_flock_on_a_folder_is_refused(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NFS emulates flock with POSIX locks, and an exclusive one needs a writable descriptor."""
    import errno
    import fcntl

    from kitaru.errors import KitaruLockTimeoutError

    exec_id = make_execution(store)
    real_flock = fcntl.flock

    def nfs_like(fd: int, operation: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode) and operation & fcntl.LOCK_EX:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", nfs_like)
    with store.exec_lock(exec_id):
        assert (store.exec_dir(exec_id) / "lock").is_file()
        with pytest.raises(KitaruLockTimeoutError):
            store.exec_lock(exec_id, timeout=0.05).acquire()
    store.update_state(exec_id, lambda s: {**s, "status": "failed"})
    assert store.read_state(exec_id)["status"] == "failed"


def test_yaml_items_are_remembered_without_changing_the_text() -> None:
    """dump_yaml remembers each item's text; it must equal one dump of the whole mapping."""
    import yaml

    from kitaru.store.records import dump_yaml, load_yaml

    def whole(data: dict) -> bytes:
        return yaml.dump(data, Dumper=yaml.SafeDumper, sort_keys=False).encode()

    cases = [
        {"a": 1, "b": 1.0, "c": True, "d": None, "e": "null", "f": "yes", "g": "0o17"},
        {"n": float("nan"), "i": float("inf"), "x": 1e-05, "s": "multi\nline\n"},
        {"nested": {"list": [1, {"k": [None, "v"]}], "empty": {}}, "u": "é \x85 \u2028"},
        {1: "an int key", "t": "2026-11-26T05:00:00+00:00"},
    ]
    for data in cases * 2:  # the second round is served from memory
        text = dump_yaml(data)
        assert text == whole(data)
        loaded = load_yaml(text, "x")
        assert repr(loaded) == repr(data)
    assert dump_yaml({"v": 1}) != dump_yaml({"v": 1.0}) != dump_yaml({"v": True})
