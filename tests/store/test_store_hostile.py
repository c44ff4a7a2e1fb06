"""Hostile names and ids are refused before any file under the project is touched."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile_names import HOSTILE_NAMES
from store_helpers import make_execution

from kitaru.errors import KitaruUsageError
from kitaru.store import Store, layout

# Audit hooks cannot be removed, so one is installed per process; it appends to EVENTS only
# while WATCHED names a folder, and each test clears EVENTS.
EVENTS: list[tuple[str, str]] = []
WATCHED: list[str] = []
_FS_EVENTS = {
    "open",
    "os.mkdir",
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.listdir",
    "os.scandir",
    "os.chmod",
    "os.chown",
    "os.utime",
    "os.truncate",
    "os.symlink",
    "os.link",
    "os.walk",
    "shutil.rmtree",
}
_hook_installed = False


def _path_of(arg: Any) -> str | None:
    if isinstance(arg, int) or arg is None:
        return None
    try:
        return os.path.abspath(os.fsdecode(arg))
    except (TypeError, ValueError):
        return None


def _hook(event: str, args: tuple) -> None:
    if not WATCHED or event not in _FS_EVENTS:
        return
    for arg in args[:2]:
        path = _path_of(arg)
        if path is None:
            continue
        if any(path == w or path.startswith(w + os.sep) for w in WATCHED) or path.startswith(
            "/etc"
        ):
            EVENTS.append((event, path))


def _install_hook() -> None:
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_hook)
        _hook_installed = True


@pytest.fixture
def watch(project_dir: Path):
    """Record file-system audit events under the test's folder (and /etc) while active."""
    _install_hook()
    EVENTS.clear()
    WATCHED[:] = [str(project_dir.parent.resolve()), str(project_dir.parent)]
    yield EVENTS
    WATCHED.clear()
    EVENTS.clear()


def test_hostile_list_is_large_and_all_rejected_by_validate_name() -> None:
    assert len(HOSTILE_NAMES) >= 50
    for name in HOSTILE_NAMES:
        with pytest.raises(KitaruUsageError):
            layout.validate_name("name", name)


def _entry_points(store: Store, exec_id: str) -> dict[str, Callable[[Any], Any]]:
    def call_record(name: Any) -> dict:
        return {
            "seq": 1,
            "name": "step",
            "invocation_id": name,
            "status": "completed",
            "attempts": [],
            "artifacts": [],
            "metadata": {},
        }

    return {
        "exec_dir": store.exec_dir,
        "resolve_exec_id": store.resolve_exec_id,
        "read_state": store.read_state,
        "read_spec": store.read_spec,
        "update_state": lambda n: store.update_state(n, lambda s: s),
        "list_calls": store.list_calls,
        "list_waits": store.list_waits,
        "append_log": lambda n: store.append_log(n, {"message": "hi"}),
        "read_logs": store.read_logs,
        "exec_lock": lambda n: store.exec_lock(n).acquire(),
        "runner_lock": lambda n: store.runner_lock(n).acquire(),
        "runner_alive": store.runner_alive,
        "candidate_ids(flow)": lambda n: store.candidate_ids(flow=n),
        "candidate_ids(status)": lambda n: store.candidate_ids(status=n),
        "cache_path": store.cache_path,
        "cache_get": store.cache_get,
        "cache_put": lambda n: store.cache_put(n, exec_id, 1, "step_1"),
        "cache_put(invocation_id)": lambda n: store.cache_put("ab" * 32, exec_id, 1, n),
        "read_call_file(invocation_id)": lambda n: store.read_call_file(exec_id, 1, n),
        "write_call(invocation_id)": lambda n: store.write_call(exec_id, call_record(n)),
        "write_wait(invocation_id)": lambda n: store.write_wait(exec_id, call_record(n)),
        "parse_sub_id(call)": lambda n: layout.parse_sub_id("call id", n, "c"),
        "parse_sub_id(artifact)": lambda n: layout.parse_sub_id("artifact id", n, "a"),
    }


# None means "no filter" for candidate_ids, so it is not hostile there.
_NONE_MEANS_ALL = {"candidate_ids(flow)", "candidate_ids(status)"}


def test_every_store_entry_point_rejects_hostile_names_without_touching_files(
    store: Store, watch: list
) -> None:
    exec_id = make_execution(store)
    failures = []
    for label, func in _entry_points(store, exec_id).items():
        for name in HOSTILE_NAMES:
            if name is None and label in _NONE_MEANS_ALL:
                continue
            watch.clear()
            try:
                func(name)
            except KitaruUsageError:
                pass
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(f"{label}({name!r}) raised {type(exc).__name__}: {exc}")
            else:
                failures.append(f"{label}({name!r}) was accepted")
            if watch:
                failures.append(f"{label}({name!r}) touched {watch[:3]}")
    assert failures == []


def test_audit_hook_sees_store_access(store: Store, watch: list) -> None:
    """The hook itself works: a valid call is seen touching the store."""
    exec_id = make_execution(store)
    watch.clear()
    store.read_state(exec_id)
    assert any(event == "open" for event, _ in watch)


def test_parse_sub_id_accepts_valid_ids() -> None:
    assert layout.parse_sub_id("call id", "kr-abc.c12", "c") == ("kr-abc", 12, None)
    assert layout.parse_sub_id("artifact id", "kr-abc.a3.1", "a") == ("kr-abc", 3, 1)
    for bad in ("kr-abc", "kr-abc.w1", "kr-abc.c", "kr-abc.cx", "xx-abc.c1", "kr-abc.c1.2.3"):
        with pytest.raises(KitaruUsageError):
            layout.parse_sub_id("call id", bad, "c")


@pytest.mark.parametrize(
    "key", ["AB" * 32, "abc1234", "a" * 129, "ab cd" * 8, "g" * 64, "ab" * 31 + "\n", b"ab" * 32]
)
def test_cache_keys_must_be_8_to_128_lowercase_hex_digits(store: Store, key: Any) -> None:
    with pytest.raises(KitaruUsageError, match="Invalid cache key"):
        store.cache_get(key)
    assert store.cache_get("ab" * 4) is None  # the shortest valid key, and a miss
    assert store.cache_path("f" * 128).name == "f" * 128
