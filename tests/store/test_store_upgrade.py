"""A format-1 store reads as before and is upgraded to the current format before a write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson

from kitaru import checkpoint, flow
from kitaru.client import KitaruClient
from kitaru.store import FORMAT, Store, now_iso
from kitaru.store.check import check_store

RUNS: list[int] = []


@checkpoint
def triple(x: int) -> int:
    RUNS.append(x)
    return x * 3


@flow
def tripling(x: int) -> int:
    return triple(x)


def _as_format_1(store: Store) -> tuple[str, Path]:
    """Rewrite the store's cache the way format 1 kept it; return the key and the old entry."""
    [link] = [p for p in (store.root / "cache").iterdir()]
    call_id = json.loads(link.read_bytes())["call_id"]
    link.unlink()
    legacy = store.root / "cache" / link.name[:2] / f"{link.name[2:]}.json"
    legacy.parent.mkdir(mode=0o700)
    record = {"schema_version": 1, "call_id": call_id, "created_at": now_iso()}
    legacy.write_bytes(orjson.dumps(record))
    legacy.chmod(0o600)
    (store.root / "format.json").write_text('{"format": 1}\n')
    return link.name, legacy


def _format(store: Store) -> int:
    return json.loads((store.root / "format.json").read_text())["format"]


def test_reading_a_format_1_store_writes_nothing(store: Store) -> None:
    RUNS.clear()
    handle = tripling.run(2)
    assert handle.wait() == 6
    _, legacy = _as_format_1(store)
    before = sorted(str(p) for p in store.root.rglob("*"))
    execution = KitaruClient().executions.get(handle.exec_id)
    assert [c.status for c in execution.checkpoints] == ["completed"]
    assert KitaruClient().executions.list()[0].exec_id == handle.exec_id
    assert sorted(str(p) for p in store.root.rglob("*")) == before
    assert _format(Store.open()) == 1 and legacy.is_file()


def test_doctor_reports_a_format_1_store_and_fix_upgrades_it(store: Store) -> None:
    handle = tripling.run(3)
    handle.wait()
    key, legacy = _as_format_1(store)
    report = check_store(Store.open())
    assert report["ok"]
    assert sorted(p["code"] for p in report["problems"]) == ["legacy_cache", "old_format"]
    fixed = check_store(Store.open(), fix=True)
    # The upgrade converts the cache too, so only the format is reported (as fixed).
    assert [(p["code"], p["fixed"]) for p in fixed["problems"]] == [("old_format", True)]
    assert _format(store) == FORMAT
    assert not legacy.parent.exists()
    link = store.root / "cache" / key
    assert os.path.samefile(link, store.exec_dir(handle.exec_id) / "calls" / "0001-triple.json")
    assert check_store(Store.open())["problems"] == []


def test_the_next_run_upgrades_and_still_hits_the_old_cache_entry(store: Store) -> None:
    RUNS.clear()
    first = tripling.run(4)
    assert first.wait() == 12
    key, legacy = _as_format_1(store)
    second = tripling.run(4)
    assert second.wait() == 12
    assert RUNS == [4]  # the body did not run again: the converted entry was found
    assert _format(store) == FORMAT
    assert not legacy.exists()
    assert json.loads((store.root / "cache" / key).read_bytes())["call_id"] == f"{first.exec_id}.c1"
    assert check_store(Store.open())["problems"] == []


def test_an_old_entry_whose_call_is_gone_is_dropped(store: Store) -> None:
    first = tripling.run(5)
    first.wait()
    key, legacy = _as_format_1(store)
    record = orjson.loads(legacy.read_bytes())
    legacy.write_bytes(orjson.dumps({**record, "call_id": f"{first.exec_id}.c9"}))
    assert Store.open().upgrade() is True
    assert Store.open().upgrade() is False  # already current
    assert list((store.root / "cache").iterdir()) == []
    assert _format(store) == FORMAT
