"""The checkpoint cache: equal source and inputs in a new execution reuse the earlier output."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pydantic
import pytest
from cl_helpers import cache_call_id, cache_files, calls, exec_dir

import kitaru
from kitaru import checkpoint, flow
from kitaru.store import Store
from kitaru.store.check import check_store

RUNS: list[Any] = []
FAIL: dict[str, bool] = {"now": False}


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    RUNS.clear()
    FAIL["now"] = False


@checkpoint
def double(x: Any) -> Any:
    RUNS.append(x)
    return x * 2 if isinstance(x, int) else repr(x)


@flow
def doubling(x: Any) -> Any:
    return double(x)


@checkpoint
def annotate(topic: str) -> str:
    RUNS.append(topic)
    kitaru.save("notes", {"topic": topic}, type="context")
    kitaru.log(tokens={"in": 3}, model="m1")
    kitaru.log(tokens={"out": 5})
    return f"about {topic}"


@flow
def annotating(topic: str) -> str:
    return annotate(topic)


@checkpoint
def load_notes(exec_id: str) -> Any:
    return kitaru.load(exec_id, "notes")


@flow
def loading(exec_id: str) -> Any:
    return load_notes(exec_id)


@checkpoint
def flaky(x: int) -> int:
    RUNS.append(x)
    if FAIL["now"]:
        raise RuntimeError("boom")
    return x + 1


@flow
def flaky_flow(x: int) -> int:
    return flaky(x)


@flow(cache=False)
def doubling_no_cache(x: Any) -> Any:
    return double(x)


@flow
def doubling_twice(x: int) -> list[int]:
    return [double(x), double(x)]


class Point(pydantic.BaseModel):
    x: int


@checkpoint
def describe(value: Any) -> str:
    RUNS.append(value)
    return type(value).__name__


@flow
def describing(value: Any) -> str:
    return describe(value)


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n

    def __mul__(self, other: int) -> int:
        return self.n * other


def _client() -> kitaru.KitaruClient:
    return kitaru.KitaruClient()


def _only_call(exec_id: str) -> dict[str, Any]:
    records = calls(exec_id)
    assert len(records) == 1, records
    return records[0]


# -- hits ----------------------------------------------------------------------------------------


def test_second_run_reuses_output_and_names_the_original_call() -> None:
    first = doubling.run(21)
    assert first.wait() == 42
    second = doubling.run(21)
    assert second.wait() == 42
    assert RUNS == [21], "the checkpoint body ran again on a cache hit"

    original = _only_call(first.exec_id)
    hit = _only_call(second.exec_id)
    assert original["cached_from"] is None
    assert hit["status"] == "completed"
    assert hit["cached_from"] == original["call_id"]
    assert hit["call_id"] == f"{second.exec_id}.c1"
    assert hit["cache_key"] == original["cache_key"]

    execution = _client().executions.get(second.exec_id)
    assert execution.status.value == "completed"
    [cp] = execution.checkpoints
    assert cp.cached_from == original["call_id"]
    assert cp.status == "completed"


def test_a_hit_of_a_hit_names_the_first_original() -> None:
    first = doubling.run(5)
    doubling.run(5)
    third = doubling.run(5)
    assert third.wait() == 10
    assert RUNS == [5]
    assert _only_call(third.exec_id)["cached_from"] == f"{first.exec_id}.c1"


def test_changed_input_misses() -> None:
    doubling.run(1).wait()
    second = doubling.run(2)
    assert second.wait() == 4
    assert RUNS == [1, 2]
    assert _only_call(second.exec_id)["cached_from"] is None


def test_keyword_and_int_float_inputs_are_distinct() -> None:
    doubling.run(2).wait()
    assert doubling.run(2.0).wait() == "2.0"
    assert doubling.run(x=True).wait() == 2  # True * 2, a new key: bool is not int
    assert RUNS == [2, 2.0, True]


def test_repeated_call_in_one_execution_runs_each_time() -> None:
    handle = doubling_twice.run(3)
    assert handle.wait() == [6, 6]
    assert RUNS == [3, 3]
    assert [c["cached_from"] for c in calls(handle.exec_id)] == [None, None]


def _write_module(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(
        textwrap.dedent(
            f"""
            from kitaru import checkpoint, flow

            RUNS = []

            @checkpoint
            def compute(x):
                RUNS.append(x)
                {body}

            @flow
            def computing(x):
                return compute(x)
            """
        )
    )


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "mods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return folder


def test_changed_function_source_misses_after_reload(module_dir: Path) -> None:
    name = "cl_cache_mod_reload"
    _write_module(module_dir, name, "return x + 1")
    try:
        module = importlib.import_module(name)
        assert module.computing.run(1).wait() == 2
        assert module.computing.run(1).wait() == 2
        assert module.RUNS == [1]  # unchanged source: a hit
        _write_module(module_dir, name, "return x + 1000  # changed")
        importlib.invalidate_caches()
        module = importlib.reload(module)
        handle = module.computing.run(1)
        assert handle.wait() == 1001
        assert module.RUNS == [1]  # the reloaded module's own list: the body ran
        assert _only_call(handle.exec_id)["cached_from"] is None
    finally:
        sys.modules.pop(name, None)


def test_changed_function_source_misses_under_a_fresh_module_name(module_dir: Path) -> None:
    _write_module(module_dir, "cl_cache_mod_a", "return x + 1")
    _write_module(module_dir, "cl_cache_mod_b", "return x + 2")  # same length, other body
    try:
        first = importlib.import_module("cl_cache_mod_a")
        assert first.computing.run(1).wait() == 2
        second = importlib.import_module("cl_cache_mod_b")
        handle = second.computing.run(1)
        assert handle.wait() == 3
        assert second.RUNS == [1]
        assert _only_call(handle.exec_id)["cached_from"] is None
        # the same source under another module name is the same checkpoint: a hit
        _write_module(module_dir, "cl_cache_mod_c", "return x + 1")
        third = importlib.import_module("cl_cache_mod_c")
        assert third.computing.run(1).wait() == 2
        assert third.RUNS == []
    finally:
        for name in ("cl_cache_mod_a", "cl_cache_mod_b", "cl_cache_mod_c"):
            sys.modules.pop(name, None)


def test_a_hit_carries_manual_artifacts_and_log_metadata() -> None:
    first = annotating.run("rust")
    assert first.wait() == "about rust"
    second = annotating.run("rust")
    assert second.wait() == "about rust"
    assert RUNS == ["rust"]

    client = _client()
    original = client.executions.get(first.exec_id).checkpoints[0]
    [hit] = client.executions.get(second.exec_id).checkpoints
    assert hit.metadata == original.metadata
    assert hit.metadata["tokens"] == {"in": 3, "out": 5}
    assert hit.metadata["model"] == "m1"
    assert sorted(a.name for a in hit.artifacts) == ["annotate", "notes"]

    [notes] = client.artifacts.list(second.exec_id, name="notes")
    assert notes.artifact_id.startswith(second.exec_id)
    assert notes.load() == {"topic": "rust"}
    assert loading.run(second.exec_id).wait() == {"topic": "rust"}
    # the hit's artifacts are its own, not the original's
    first_ids = {a.artifact_id for a in client.artifacts.list(first.exec_id)}
    second_ids = {a.artifact_id for a in client.artifacts.list(second.exec_id)}
    assert not first_ids & second_ids


def _load_client_example() -> Any:
    path = (
        Path(__file__).resolve().parents[2]
        / "examples/execution_management/client_execution_management.py"
    )
    spec = importlib.util.spec_from_file_location("client_execution_management", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_client_example_twice_still_finds_summary_context() -> None:
    example = _load_client_example()
    first = example.run_workflow(topic="kitaru")
    second = example.run_workflow(topic="kitaru")
    assert second[0] != first[0]
    assert second[1:] == first[1:]
    assert "summary_context" in second[3]
    assert second[4] == {"topic": "kitaru", "summary": "Summary for kitaru."}
    [cp] = _client().executions.get(second[0]).checkpoints
    assert cp.cached_from == f"{first[0]}.c1"
    [ctx] = _client().artifacts.list(second[0], name="summary_context")
    assert ctx.load() == {"topic": "kitaru", "summary": "Summary for kitaru."}


# -- switched off ----------------------------------------------------------------------------------


def _run_flow_decorator_off() -> list[Any]:
    return [doubling_no_cache.run(4).exec_id, doubling_no_cache.run(4).exec_id]


def _run_argument_off() -> list[Any]:
    return [doubling.run(4, cache=False).exec_id, doubling.run(4, cache=False).exec_id]


def _env_off(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    monkeypatch.setenv("KITARU_CACHE", "0")
    return [doubling.run(4).exec_id, doubling.run(4).exec_id]


def _configure_off() -> list[Any]:
    kitaru.configure(cache=False)
    try:
        return [doubling.run(4).exec_id, doubling.run(4).exec_id]
    finally:
        kitaru.configure(cache=None)


@pytest.mark.parametrize("how", ["flow", "run", "env", "configure"])
def test_cache_can_be_switched_off(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "flow":
        ids = _run_flow_decorator_off()
    elif how == "run":
        ids = _run_argument_off()
    elif how == "env":
        ids = _env_off(monkeypatch)
    else:
        ids = _configure_off()
    assert RUNS == [4, 4]
    for exec_id in ids:
        assert _only_call(exec_id)["cached_from"] is None
    assert cache_files() == []  # nothing is recorded either


def test_run_argument_switches_cache_back_on_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KITARU_CACHE", "0")
    doubling.run(6, cache=True).wait()
    handle = doubling.run(6, cache=True)
    assert handle.wait() == 12
    assert RUNS == [6]
    assert _only_call(handle.exec_id)["cached_from"] is not None


def test_cache_off_run_does_not_use_an_existing_entry() -> None:
    doubling.run(7).wait()
    assert len(cache_files()) == 1
    handle = doubling.run(7, cache=False)
    assert handle.wait() == 14
    assert RUNS == [7, 7]
    # and the next cached run still hits the first one
    third = doubling.run(7)
    third.wait()
    assert RUNS == [7, 7]


# -- never hits ------------------------------------------------------------------------------------


def test_a_failed_call_is_never_served_from_the_cache() -> None:
    FAIL["now"] = True
    failed = flaky_flow.run(1)
    with pytest.raises(kitaru.KitaruError):
        failed.wait()
    assert cache_files() == []
    FAIL["now"] = False
    handle = flaky_flow.run(1)
    assert handle.wait() == 2
    assert RUNS == [1, 1]
    assert _only_call(handle.exec_id)["cached_from"] is None
    # the successful one is cached now
    flaky_flow.run(1).wait()
    assert RUNS == [1, 1]


@pytest.mark.parametrize(
    "value",
    [{1, 2}, Opaque(3), (1, 2), float("nan"), {1: "non-string key"}, [b"bytes"]],
    ids=["set", "custom-object", "tuple", "nan", "int-key", "bytes-in-list"],
)
def test_inputs_without_canonical_encoding_never_hit(value: Any) -> None:
    first = doubling.run(value)
    first.wait()
    second = doubling.run(value)
    second.wait()
    assert len(RUNS) == 2
    assert _only_call(second.exec_id)["cached_from"] is None
    assert _only_call(first.exec_id)["cache_key"] is None
    assert cache_files() == []


def test_pydantic_inputs_hit() -> None:
    describing.run(Point(x=1)).wait()
    handle = describing.run(Point(x=1))
    assert handle.wait() == "Point"
    assert len(RUNS) == 1
    describing.run(Point(x=2)).wait()
    assert len(RUNS) == 2


def test_dict_that_looks_like_an_encoded_model_does_not_hit_the_model_call() -> None:
    describing.run(Point(x=1)).wait()
    lookalike = {"__model__": f"{Point.__module__}:{Point.__qualname__}", "data": {"x": 1}}
    handle = describing.run(lookalike)
    assert handle.wait() == "dict"


def test_function_without_retrievable_source_never_hits() -> None:
    namespace: dict[str, Any] = {"checkpoint": checkpoint, "RUNS": RUNS}
    exec(  # noqa: S102 - the point of the test: no source file behind the function
        "@checkpoint\ndef made_up(x):\n    RUNS.append(x)\n    return x + 1\n", namespace
    )
    made_up = namespace["made_up"]

    @flow
    def made_up_flow(x: int) -> int:
        return made_up(x)

    made_up_flow.run(1).wait()
    handle = made_up_flow.run(1)
    assert handle.wait() == 2
    assert RUNS == [1, 1]
    assert _only_call(handle.exec_id)["cached_from"] is None
    assert cache_files() == []


# -- the entry on disk, doctor ---------------------------------------------------------------------


def test_cache_entry_is_a_hard_link_to_the_call_record() -> None:
    first = doubling.run(8)
    first.wait()
    [entry] = cache_files()
    assert re.fullmatch(r"[0-9a-f]{64}", entry.name)
    assert entry.parent == Path.cwd() / ".kitaru" / "cache"
    record_file = exec_dir(first.exec_id) / "calls" / "0001-double.json"
    # One name more for the same file: no copy, nothing allocated, `cat` shows the call.
    assert os.path.samefile(entry, record_file) and not entry.is_symlink()
    assert record_file.stat().st_nlink == 2
    assert json.loads(entry.read_text()) == _only_call(first.exec_id)
    assert _only_call(first.exec_id)["cache_key"] == entry.name
    # a hit writes no new entry and leaves the entry pointing at the original call
    doubling.run(8).wait()
    assert cache_files() == [entry]
    assert cache_call_id(entry) == f"{first.exec_id}.c1"


def _stale_entry(exec_id: str) -> Path:
    """An entry naming call 99 of ``exec_id``, which never existed."""
    store = Store.open()
    entry = store.cache_path("ab" + "0" * 62)
    record = _only_call(exec_id)
    entry.write_text(json.dumps({**record, "call_id": f"{exec_id}.c99"}))
    return entry


def test_doctor_warns_about_an_entry_whose_call_is_gone_and_fix_removes_it() -> None:
    handle = doubling.run(9)
    handle.wait()
    stale = _stale_entry(handle.exec_id)
    store = Store.open()
    report = check_store(store)
    stale_problems = [p for p in report["problems"] if p["code"] == "stale_cache_entry"]
    assert len(stale_problems) == 1
    assert stale_problems[0]["severity"] == "warning"
    assert report["ok"] and report["errors"] == 0
    assert stale.exists()

    fixed = check_store(store, fix=True)
    assert [p["fixed"] for p in fixed["problems"] if p["code"] == "stale_cache_entry"] == [True]
    assert not stale.exists()
    assert len(cache_files()) == 1  # the live entry stays
    again = check_store(store)
    assert not [p for p in again["problems"] if p["code"] == "stale_cache_entry"]


@pytest.mark.corrupts_store
def test_entry_of_a_deleted_execution_is_a_miss_and_is_replaced() -> None:
    first = doubling.run(10)
    first.wait()
    store = Store.open()
    store.remove_tree(exec_dir(first.exec_id))
    report = check_store(store)
    assert [p["severity"] for p in report["problems"] if p["code"] == "stale_cache_entry"] == [
        "warning"
    ]
    second = doubling.run(10)
    assert second.wait() == 20
    assert RUNS == [10, 10]
    [entry] = cache_files()
    assert cache_call_id(entry) == f"{second.exec_id}.c1"


def _replace_entry(entry: Path, content: bytes) -> None:
    entry.unlink()  # never write through the link: that would change the call's record
    entry.write_bytes(content)


def test_entry_naming_a_missing_call_is_a_miss() -> None:
    first = doubling.run(11)
    first.wait()
    [entry] = cache_files()
    record = json.loads(entry.read_text())
    _replace_entry(entry, json.dumps({**record, "call_id": f"{first.exec_id}.c99"}).encode())
    second = doubling.run(11)
    assert second.wait() == 22
    assert RUNS == [11, 11]
    assert cache_call_id(entry) == f"{second.exec_id}.c1"


@pytest.mark.parametrize(
    "damage",
    ["garbage", "hostile invocation id", "wrong key", "symlink", "fifo"],
)
def test_damaged_entry_is_a_miss_and_never_followed(damage: str, tmp_path: Path) -> None:
    first = doubling.run(12)
    first.wait()
    [entry] = cache_files()
    record = json.loads(entry.read_text())
    if damage == "garbage":
        _replace_entry(entry, b"{not json")
    elif damage == "hostile invocation id":
        _replace_entry(entry, json.dumps({**record, "invocation_id": "../../x"}).encode())
    elif damage == "wrong key":  # names a real call whose record has another key
        _replace_entry(entry, json.dumps({**record, "cache_key": "0" * 64}).encode())
        (exec_dir(first.exec_id) / "calls" / "0001-double.json").write_text(
            json.dumps({**record, "cache_key": "0" * 64})
        )
    elif damage == "fifo":  # must not hang the lookup (nor doctor)
        entry.unlink()
        os.mkfifo(entry, 0o600)
    else:
        outside = tmp_path / "outside.json"
        outside.write_text(json.dumps(record))
        entry.unlink()
        entry.symlink_to(outside)
    second = doubling.run(12)
    assert second.wait() == 24
    assert RUNS == [12, 12]
    assert cache_call_id(entry) == f"{second.exec_id}.c1"
    assert not entry.is_symlink()


# -- submitted calls, replay -----------------------------------------------------------------------


@flow
def doubling_many(xs: list[int]) -> list[int]:
    return double.map(xs).result()


def test_submitted_calls_hit_too() -> None:
    first = doubling_many.run([1, 2, 3])
    assert first.wait() == [2, 4, 6]
    second = doubling_many.run([1, 2, 3])
    assert second.wait() == [2, 4, 6]
    assert sorted(RUNS) == [1, 2, 3]
    originals = {c["invocation_id"]: c["call_id"] for c in calls(first.exec_id)}
    for record in calls(second.exec_id):
        assert record["cached_from"] == originals[record["invocation_id"]]


@checkpoint
def first_step(x: int) -> int:
    RUNS.append(("first", x))
    return x + 1


@checkpoint
def second_step(x: int) -> int:
    RUNS.append(("second", x))
    return x * 10


@flow
def two_steps(x: int) -> int:
    return second_step(first_step(x))


def test_replay_boundary_and_later_calls_never_use_the_cache() -> None:
    first = two_steps.run(1)
    assert first.wait() == 20
    replayed = two_steps.replay(first.exec_id, from_="second_step")
    assert replayed.wait() == 20
    assert RUNS == [("first", 1), ("second", 2), ("second", 2)]
    before, boundary = calls(replayed.exec_id)
    assert before["original_call_id"] == f"{first.exec_id}.c1"
    assert before["cached_from"] is None
    assert boundary["cached_from"] is None
    # an ordinary new run still hits both
    third = two_steps.run(1)
    assert third.wait() == 20
    assert len(RUNS) == 3
    assert all(c["cached_from"] for c in calls(third.exec_id))
