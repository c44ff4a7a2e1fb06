"""Invocation ids: ``name``, ``name_2``, ...; custom ``id=``; hostile ids refused."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import call_files

from kitaru import KitaruUsageError, checkpoint, flow
from kitaru.client import ExecutionStatus, KitaruClient


def _hostile_names() -> list[Any]:
    path = Path(__file__).resolve().parents[1] / "store" / "hostile_names.py"
    if path.is_file():
        spec = importlib.util.spec_from_file_location("_rt_hostile_names", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return [n for n in module.HOSTILE_NAMES if n is not None]
    return [
        "../x",
        "a/b",
        ".hidden",
        "x.lock",
        "",
        "a\nb",
        "/etc/passwd",
        "..",
        "a\x00b",
        "x" * 200,
    ]


HOSTILE = _hostile_names()


def _calls(exec_id: str) -> list[tuple[str, str]]:
    return [(c.name, c.invocation_id) for c in KitaruClient().executions.get(exec_id).checkpoints]


def test_repeated_calls_get_numbered_invocation_ids() -> None:
    @checkpoint
    def research(topic: str) -> str:
        return topic.upper()

    @checkpoint
    def write(text: str) -> str:
        return text

    @flow
    def agent() -> list[str]:
        out = [research("a"), research("b")]
        out.append(write("w"))
        out.append(research("c"))
        return out

    handle = agent.run()
    assert handle.wait() == ["A", "B", "w", "C"]
    assert _calls(handle.exec_id) == [
        ("research", "research"),
        ("research", "research_2"),
        ("write", "write"),
        ("research", "research_3"),
    ]
    # one record file per call, named after the invocation id
    names = [p.name for p in call_files(handle.exec_id)]
    assert [n.split("-", 1)[1] for n in names] == [
        "research.json",
        "research_2.json",
        "write.json",
        "research_3.json",
    ]


def test_custom_id_is_used() -> None:
    @checkpoint
    def research(topic: str) -> str:
        return topic

    @flow
    def agent() -> str:
        research("a")
        research("b", id="custom")
        return research("c")

    handle = agent.run()
    assert handle.wait() == "c"
    assert _calls(handle.exec_id) == [
        ("research", "research"),
        ("research", "custom"),
        ("research", "research_2"),
    ]


def test_ids_are_per_execution() -> None:
    @checkpoint
    def step() -> int:
        return 1

    @flow
    def twice() -> None:
        step()
        step()

    first = twice.run()
    second = twice.run()
    assert _calls(first.exec_id) == _calls(second.exec_id) == [("step", "step"), ("step", "step_2")]


def test_reusing_a_custom_id_is_a_usage_error() -> None:
    caught: list[BaseException] = []

    @checkpoint
    def step(x: int) -> int:
        return x

    @flow
    def dup() -> int:
        step(1, id="same")
        try:
            step(2, id="same")
        except KitaruUsageError as exc:
            caught.append(exc)
        return 0

    handle = dup.run()
    assert handle.wait() == 0
    assert len(caught) == 1
    assert "same" in str(caught[0])
    assert _calls(handle.exec_id) == [("step", "same")]


def test_custom_id_colliding_with_an_automatic_id_is_a_usage_error() -> None:
    @checkpoint
    def step() -> int:
        return 1

    @flow
    def clash() -> None:
        step()
        step(id="step")

    handle = clash.run()
    assert handle.status == ExecutionStatus.FAILED
    failure = KitaruClient().executions.get(handle.exec_id).failure
    assert failure is not None
    assert "already used" in failure.message


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("bad", HOSTILE, ids=[repr(n)[:40] for n in HOSTILE])
def test_hostile_custom_id_is_refused(bad: Any, tmp_path: Path) -> None:
    caught: list[BaseException] = []
    ran: list[int] = []

    @checkpoint
    def step() -> int:
        ran.append(1)
        return 1

    @flow
    def hostile() -> str:
        try:
            step(id=bad)
        except KitaruUsageError as exc:
            caught.append(exc)
        return "survived"

    before = _tree(tmp_path)
    handle = hostile.run()
    assert handle.wait() == "survived"
    assert len(caught) == 1
    assert ran == []
    assert KitaruClient().executions.get(handle.exec_id).checkpoints == []
    # the only new files are inside the project's store
    new = _tree(tmp_path) - before
    assert all(p.startswith(os.path.join("project", ".kitaru")) for p in new), sorted(new)
    assert not (tmp_path / "x").exists()
    assert not list(
        (tmp_path / "project" / ".kitaru" / "executions" / handle.exec_id).glob("calls/*")
    )
