"""Values round-trip exactly (every codec), ``kitaru.save``/``load`` and ``kitaru.log``."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest
from rt_helpers import call_records

import kitaru
from kitaru import KitaruRuntimeError, KitaruUsageError, checkpoint, flow
from kitaru.client import ExecutionStatus, KitaruClient


@dataclass(frozen=True)
class Point:
    x: int
    y: float


class Report(pydantic.BaseModel):
    title: str
    scores: list[int]
    nested: dict[str, float] = {}


CASES: dict[str, tuple[Any, str]] = {
    "str": ("héllo", "json"),
    "int": (2**40, "json"),
    "float": (1.25, "json"),
    "bool": (True, "json"),
    "none": (None, "json"),
    "list": ([1, "a", None, 2.5], "json"),
    "dict": ({"a": {"b": [1, {"c": False}]}}, "json"),
    "tuple": ((1, "a", (2, 3)), "pickle"),
    "set": ({1, 2, 3}, "pickle"),
    "intkeys": ({1: "a", 2: "b"}, "pickle"),
    "nan": ([1.0, float("nan")], "pickle"),
    "bytes": (b"\x00\x01\xff", "pickle"),
    "datetime": (dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC), "pickle"),
    "dataclass": (Point(1, 2.5), "pickle"),
    "pydantic": (Report(title="t", scores=[1, 2], nested={"a": 0.5}), "pydantic"),
    "bigint": (2**70, "pickle"),
    "u64max": (2**64 - 1, "json"),
    "i64min": (-(2**63), "json"),
    "u64plus1": (2**64, "pickle"),
    "strsub": (ExecutionStatus.FAILED, "pickle"),
    "inf": (float("inf"), "pickle"),
}


def _same(got: Any, want: Any) -> bool:
    if type(got) is not type(want):
        return False
    if isinstance(want, list) and any(isinstance(v, float) and math.isnan(v) for v in want):
        return len(got) == len(want) and all(
            (math.isnan(a) and math.isnan(b)) if isinstance(b, float) and math.isnan(b) else a == b
            for a, b in zip(got, want, strict=True)
        )
    return bool(got == want)


def _produce_all() -> str:
    @checkpoint
    def produce(key: str) -> Any:
        kitaru.save(f"saved_{key}", CASES[key][0], type="context")
        return CASES[key][0]

    @flow
    def producer() -> dict[str, bool]:
        return {key: _same(produce(key, id=f"v_{key}"), value) for key, (value, _) in CASES.items()}

    handle = producer.run()
    assert handle.status == ExecutionStatus.COMPLETED
    # the value returned by the call inside the flow is the value itself
    assert handle.wait() == dict.fromkeys(CASES, True)
    return handle.exec_id


def test_values_round_trip_through_artifact_refs() -> None:
    exec_id = _produce_all()
    arts = KitaruClient().artifacts.list(exec_id)
    outputs = {}
    saved = {}
    for art in arts:
        if art.save_type == "step_output":
            outputs[art.artifact_id] = art
        else:
            saved[art.name] = art
    calls = KitaruClient().executions.get(exec_id).checkpoints
    for call in calls:
        key = call.invocation_id.removeprefix("v_")
        want = CASES[key][0]
        out = next(a for a in call.artifacts if a.save_type == "step_output")
        assert out.artifact_id in outputs
        assert _same(out.load(), want), key
        assert _same(saved[f"saved_{key}"].load(), want), key
    assert len(saved) == len(CASES)


def test_codec_recorded_for_each_value() -> None:
    exec_id = _produce_all()
    for rec in call_records(exec_id):
        key = rec["invocation_id"].removeprefix("v_")
        codec = CASES[key][1]
        for art in rec["artifacts"]:
            assert art["value"]["codec"] == codec, (key, art["value"])
    pyd = next(r for r in call_records(exec_id) if r["invocation_id"] == "v_pydantic")
    ref = pyd["artifacts"][0]["value"]
    assert ref["class"].endswith(":Report")
    assert ref["data"] == {"title": "t", "scores": [1, 2], "nested": {"a": 0.5}}


def test_values_round_trip_through_kitaru_load_in_a_later_flow() -> None:
    exec_id = _produce_all()

    @checkpoint
    def read_back(source: str) -> dict[str, bool]:
        out = {}
        for key, (value, _) in CASES.items():
            out[f"out_{key}"] = _same(kitaru.load(source, f"v_{key}"), value)
            out[f"saved_{key}"] = _same(kitaru.load(source, f"saved_{key}"), value)
        return out

    @flow
    def consumer(source: str) -> dict[str, bool]:
        return read_back(source)

    result = consumer.run(exec_id).wait()
    assert result == {k: True for k in result}
    assert len(result) == 2 * len(CASES)


def test_kitaru_load_by_checkpoint_name_and_prefix() -> None:
    @checkpoint
    def only_once() -> tuple[int, int]:
        return (4, 2)

    @flow
    def source() -> None:
        only_once()

    src = source.run().exec_id

    @checkpoint
    def reader(exec_id: str) -> Any:
        return kitaru.load(exec_id, "only_once")

    @flow
    def sink(exec_id: str) -> Any:
        return reader(exec_id)

    assert sink.run(src).wait() == (4, 2)
    assert sink.run(src[:-3]).wait() == (4, 2)  # a unique prefix of the id


def test_large_value_is_stored_as_a_blob_and_loaded_back() -> None:
    big = "x" * (17 * 1024) + "end"
    big_bytes = bytes(range(256)) * 100

    @checkpoint
    def large() -> str:
        kitaru.save("big_bytes", big_bytes, type="blob")
        return big

    @flow
    def f() -> str:
        return large()

    handle = f.run()
    assert handle.wait() == big
    rec = call_records(handle.exec_id)[0]
    for art in rec["artifacts"]:
        assert "blob" in art["value"], art["value"]
        assert "data" not in art["value"]
    by_name = {a.name: a for a in KitaruClient().artifacts.list(handle.exec_id)}
    assert by_name["large"].load() == big
    assert by_name["big_bytes"].load() == big_bytes

    @checkpoint
    def read(exec_id: str) -> tuple[str, bytes]:
        return kitaru.load(exec_id, "large"), kitaru.load(exec_id, "big_bytes")

    @flow
    def g(exec_id: str) -> bool:
        got = read(exec_id)
        return got == (big, big_bytes)

    assert g.run(handle.exec_id).wait() is True


def test_small_value_is_inline() -> None:
    @checkpoint
    def small() -> str:
        return "tiny"

    @flow
    def f() -> str:
        return small()

    handle = f.run()
    ref = call_records(handle.exec_id)[0]["artifacts"][0]["value"]
    assert ref == {"codec": "json", "data": "tiny"}


def _load_errors(names: list[str]) -> dict[str, BaseException | None]:
    @checkpoint
    def saver(n: int) -> int:
        kitaru.save("dup", n)
        kitaru.save(f"unique_{n}", n)
        return n

    @flow
    def source() -> None:
        saver(1)
        saver(2)

    src = source.run().exec_id
    errors: dict[str, BaseException | None] = {}

    @checkpoint
    def reader(exec_id: str) -> None:
        for name in names:
            try:
                kitaru.load(exec_id, name)
                errors[name] = None
            except Exception as exc:
                errors[name] = exc

    @flow
    def sink(exec_id: str) -> None:
        reader(exec_id)

    sink.run(src).wait()
    return errors


def test_kitaru_load_ambiguous_and_unknown_names() -> None:
    errors = _load_errors(["dup", "missing", "saver", "unique_1"])
    assert isinstance(errors["dup"], KitaruRuntimeError)
    assert "ambiguous" in str(errors["dup"])
    assert isinstance(errors["missing"], KitaruRuntimeError)
    assert "missing" in str(errors["missing"])
    # the checkpoint name was called twice: ambiguous too
    assert isinstance(errors["saver"], KitaruRuntimeError)
    assert errors["unique_1"] is None


def test_kitaru_load_unknown_execution() -> None:
    caught: list[BaseException] = []

    @checkpoint
    def reader() -> None:
        try:
            kitaru.load("kr-doesnotexist", "x")
        except Exception as exc:
            caught.append(exc)

    @flow
    def sink() -> None:
        reader()

    sink.run().wait()
    assert len(caught) == 1
    assert isinstance(caught[0], kitaru.KitaruError)
    assert "kr-doesnotexist" in str(caught[0])


@pytest.mark.parametrize("value", ["a\ud800b", {"\udfff": 1}], ids=["str", "key"])
def test_strings_with_lone_surrogates_round_trip(value: Any) -> None:
    @checkpoint
    def produce() -> Any:
        return value

    @flow
    def f() -> Any:
        return produce()

    handle = f.run()
    assert handle.status == ExecutionStatus.COMPLETED
    assert handle.wait() == value
    art = KitaruClient().artifacts.list(handle.exec_id)[0]
    assert art.load() == value
    assert call_records(handle.exec_id)[0]["artifacts"][0]["value"]["codec"] == "pickle"


# -- 9. kitaru.save types ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["bogus", "", "step_output", "manual"])
def test_save_with_an_invalid_type_is_a_usage_error(bad: str) -> None:
    caught: list[BaseException] = []

    @checkpoint
    def saver() -> None:
        try:
            kitaru.save("x", 1, type=bad)
        except KitaruUsageError as exc:
            caught.append(exc)

    @flow
    def f() -> None:
        saver()

    handle = f.run()
    handle.wait()
    assert len(caught) == 1
    arts = KitaruClient().artifacts.list(handle.exec_id)
    assert [a.save_type for a in arts] == ["step_output"]


@pytest.mark.parametrize("kind", ["prompt", "response", "context", "input", "output", "blob"])
def test_save_kinds(kind: str) -> None:
    @checkpoint
    def saver() -> None:
        kitaru.save("thing", {"k": kind}, type=kind, tags=["t1"])

    @flow
    def f() -> None:
        saver()

    handle = f.run()
    handle.wait()
    art = KitaruClient().artifacts.list(handle.exec_id, name="thing")[0]
    assert art.kind == kind
    assert art.save_type == "manual"
    assert art.load() == {"k": kind}


def test_saved_and_output_artifacts_are_described() -> None:
    @checkpoint
    def gather(q: str) -> list[str]:
        kitaru.save("notes", f"notes for {q}", type="context")
        return [q, q]

    @flow
    def f() -> list[str]:
        return gather("why")

    handle = f.run()
    arts = {a.name: a for a in KitaruClient().artifacts.list(handle.exec_id)}
    assert set(arts) == {"gather", "notes"}
    notes = arts["notes"]
    assert (notes.kind, notes.save_type, notes.producing_call) == ("context", "manual", "gather")
    assert notes.load() == "notes for why"
    out = arts["gather"]
    assert (out.kind, out.save_type, out.producing_call) == (None, "step_output", "gather")
    assert out.load() == ["why", "why"]
    # artifact lookups by id give the same ref
    assert KitaruClient().artifacts.get(notes.artifact_id) == notes
    assert KitaruClient().artifacts.list(handle.exec_id, kind="context") == [notes]
    assert KitaruClient().artifacts.list(handle.exec_id, producing_call="gather", limit=1) == [
        arts["gather"]
    ]


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x.lock"])
def test_save_with_a_hostile_name_is_a_usage_error(bad: str) -> None:
    caught: list[BaseException] = []

    @checkpoint
    def saver() -> None:
        try:
            kitaru.save(bad, 1)
        except KitaruUsageError as exc:
            caught.append(exc)

    @flow
    def f() -> None:
        saver()

    f.run().wait()
    assert len(caught) == 1


# -- 8. kitaru.log ----------------------------------------------------------------------------


def test_log_targets_checkpoint_and_execution_and_merges() -> None:
    @checkpoint
    def step() -> int:
        kitaru.log(cost={"usd": 1}, model="a")
        kitaru.log(cost={"tokens": 2}, model="b")
        kitaru.log(nested={"a": {"x": 1}})
        kitaru.log(nested={"a": {"y": 2}})
        return 1

    @flow
    def f() -> int:
        kitaru.log(cost={"usd": 1}, phase="start")
        value = step()
        kitaru.log(cost={"tokens": 2}, phase="end")
        kitaru.log()
        return value

    handle = f.run()
    assert handle.wait() == 1
    execution = KitaruClient().executions.get(handle.exec_id)
    assert execution.metadata == {"cost": {"usd": 1, "tokens": 2}, "phase": "end"}
    call = execution.checkpoints[0]
    assert call.metadata["cost"] == {"usd": 1, "tokens": 2}
    assert call.metadata["model"] == "b"
    assert call.metadata["nested"] == {"a": {"x": 1, "y": 2}}
    # checkpoint metadata did not leak into the execution, nor the other way round
    assert "model" not in execution.metadata
    assert "phase" not in call.metadata
    # list summaries carry the execution metadata too
    summary = KitaruClient().executions.list()[0]
    assert summary.metadata == execution.metadata


def test_scalar_replaces_dict_and_dict_replaces_scalar() -> None:
    @flow
    def f() -> None:
        kitaru.log(a={"x": 1}, b=1)
        kitaru.log(a=5, b={"y": 2})

    handle = f.run()
    assert KitaruClient().executions.get(handle.exec_id).metadata == {"a": 5, "b": {"y": 2}}


def test_non_json_log_value_does_not_leave_a_running_call() -> None:
    class Opaque:
        pass

    @checkpoint
    def step() -> int:
        kitaru.log(thing=Opaque())
        return 1

    @flow
    def f() -> int:
        return step()

    handle = f.run()
    execution = KitaruClient().executions.get(handle.exec_id)
    # a value JSON cannot hold is kept as text; it never breaks the call's record
    assert execution.status == ExecutionStatus.COMPLETED
    call = execution.checkpoints[0]
    assert call.status == "completed"
    assert call.attempts
    assert isinstance(call.metadata["thing"], str)
    assert "Opaque" in call.metadata["thing"]


def test_non_json_log_value_in_the_flow_body() -> None:
    @flow
    def f() -> int:
        kitaru.log(when={1, 2}, ok="yes")
        return 1

    handle = f.run()
    assert handle.wait() == 1
    metadata = KitaruClient().executions.get(handle.exec_id).metadata
    assert metadata["ok"] == "yes"
    assert isinstance(metadata["when"], str)


def test_log_in_a_failed_attempt_is_kept_on_that_attempt() -> None:
    tries: list[int] = []

    @checkpoint(retries=1)
    def flaky() -> int:
        tries.append(1)
        kitaru.log(attempt=len(tries))
        if len(tries) == 1:
            raise ValueError("first")
        return 1

    @flow
    def f() -> int:
        return flaky()

    handle = f.run()
    assert handle.wait() == 1
    call = KitaruClient().executions.get(handle.exec_id).checkpoints[0]
    assert [a.metadata.get("attempt") for a in call.attempts] == [1, 2]
    assert call.metadata["attempt"] == 2


def test_log_and_save_from_submitted_calls_go_to_their_own_call() -> None:
    @checkpoint
    def worker(i: int) -> int:
        kitaru.log(i=i)
        kitaru.save(f"art_{i}", i * 10)
        return i

    @flow
    def f() -> list[int]:
        return worker.map([1, 2, 3]).result()

    handle = f.run()
    assert handle.wait() == [1, 2, 3]
    calls = {c.invocation_id: c for c in KitaruClient().executions.get(handle.exec_id).checkpoints}
    for inv, i in (("worker", 1), ("worker_2", 2), ("worker_3", 3)):
        assert calls[inv].metadata == {"i": i}
        manual = [a for a in calls[inv].artifacts if a.save_type == "manual"]
        assert [(a.name, a.load()) for a in manual] == [(f"art_{i}", i * 10)]
