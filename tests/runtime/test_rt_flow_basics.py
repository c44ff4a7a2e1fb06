"""``@flow`` / ``.run()`` / ``FlowHandle`` basics and the context-rule errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import kitaru
from kitaru import (
    FlowHandle,
    KitaruContextError,
    KitaruUsageError,
    checkpoint,
    flow,
)
from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.runtime import _get_current_execution_id

# -- 1. flow basics ---------------------------------------------------------------------------


def test_bare_flow_runs_and_returns_a_completed_handle() -> None:
    @checkpoint
    def double(x: int) -> int:
        return x * 2

    @flow
    def pipeline(x: int, *, plus: int = 0) -> int:
        return double(x) + plus

    handle = pipeline.run(4, plus=1)
    assert isinstance(handle, FlowHandle)
    assert handle.exec_id.startswith("kr-")
    assert handle.status == ExecutionStatus.COMPLETED
    assert handle.status.value == "completed"
    assert handle.status in {ExecutionStatus.COMPLETED}
    assert handle.wait() == 9
    assert handle.get() == 9
    assert (KitaruClient().executions.get(handle.exec_id).status) == ExecutionStatus.COMPLETED


def test_flow_with_options_runs() -> None:
    @checkpoint
    def hello(name: str) -> str:
        return f"hello {name}"

    @flow(retries=1, cache=False, stack="local")
    def greet(name: str) -> str:
        return hello(name)

    handle = greet.run(name="ada")
    assert handle.status == ExecutionStatus.COMPLETED
    assert handle.wait() == "hello ada"


@pytest.mark.parametrize(
    "value",
    [
        (1, "two", 3.0),
        {1, 2, 3},
        frozenset({"a"}),
        None,
        {"nested": [1, {"x": None}]},
        [1, 2, 3],
        b"\x00\xffbytes",
    ],
    ids=["tuple", "set", "frozenset", "none", "dict", "list", "bytes"],
)
def test_wait_and_get_return_the_real_return_value(value: Any) -> None:
    @flow
    def give() -> Any:
        return value

    handle = give.run()
    for got in (handle.wait(), handle.get(), handle.wait(timeout=5)):
        assert type(got) is type(value)
        assert got == value


def test_handle_is_usable_from_a_fresh_handle_object() -> None:
    @flow
    def give() -> tuple[int, int]:
        return (1, 2)

    handle = give.run()
    again = FlowHandle(handle.exec_id, handle._root)
    assert again.get() == (1, 2)
    assert again.exec_id == handle.exec_id


def test_each_run_gets_a_new_execution_id() -> None:
    @flow
    def noop() -> None:
        return None

    ids = [noop.run().exec_id for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(i.startswith("kr-") for i in ids)


def test_calling_a_flow_directly_raises_usage_error() -> None:
    @flow
    def direct() -> int:
        return 1

    with pytest.raises(KitaruUsageError, match="Direct flow calls are not supported"):
        direct()
    # nothing was run, so no store was created
    assert not (Path.cwd() / ".kitaru").exists()


def test_flow_run_inside_a_running_flow_raises_context_error() -> None:
    seen: list[BaseException] = []

    @flow
    def inner() -> int:
        return 1

    @checkpoint
    def in_checkpoint() -> str:
        try:
            inner.run()
        except KitaruContextError as exc:
            seen.append(exc)
        return "ok"

    @flow
    def outer() -> str:
        try:
            inner.run()
        except KitaruContextError as exc:
            seen.append(exc)
        return in_checkpoint()

    handle = outer.run()
    assert handle.wait() == "ok"
    assert len(seen) == 2
    assert all(isinstance(e, KitaruContextError) for e in seen)
    # the nested attempts created no execution of their own
    assert [e.flow_name for e in KitaruClient().executions.list()] == ["outer"]


def test_current_execution_id_inside_and_outside() -> None:
    seen: dict[str, Any] = {}

    @checkpoint
    def probe() -> str | None:
        return _get_current_execution_id()

    @flow
    def ident() -> str | None:
        seen["body"] = _get_current_execution_id()
        seen["checkpoint"] = probe()
        return seen["body"]

    assert _get_current_execution_id() is None
    handle = ident.run()
    assert seen["body"] == handle.exec_id
    assert seen["checkpoint"] == handle.exec_id
    assert handle.wait() == handle.exec_id
    assert _get_current_execution_id() is None


# -- 6. context errors (upstream's messages) --------------------------------------------------


def test_checkpoint_outside_a_flow() -> None:
    @checkpoint
    def lonely() -> int:
        return 1

    with pytest.raises(KitaruContextError, match=r"^Checkpoints can only run inside a @flow\.$"):
        lonely()


def test_nested_checkpoint_call_is_refused() -> None:
    caught: list[BaseException] = []

    @checkpoint
    def inner() -> int:
        return 1

    @checkpoint
    def outer_cp() -> int:
        try:
            return inner()
        except KitaruContextError as exc:
            caught.append(exc)
            raise

    @flow
    def nest() -> int:
        return outer_cp()

    handle = nest.run()
    assert handle.status == ExecutionStatus.FAILED
    assert len(caught) == 1
    assert str(caught[0]) == "Nested checkpoint calls are not supported in the Kitaru MVP."
    # only the outer call was recorded
    calls = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert [c.invocation_id for c in calls] == ["outer_cp"]


def test_submit_inside_a_checkpoint_is_refused() -> None:
    caught: list[BaseException] = []

    @checkpoint
    def inner(x: int) -> int:
        return x

    @checkpoint
    def outer_cp() -> int:
        for attempt in (lambda: inner.submit(1), lambda: inner.map([1])):
            try:
                attempt()
            except KitaruContextError as exc:
                caught.append(exc)
        return 0

    @flow
    def nest() -> int:
        return outer_cp()

    assert nest.run().wait() == 0
    assert [str(e) for e in caught] == [
        "Nested checkpoint calls are not supported in the Kitaru MVP."
    ] * 2


@pytest.mark.parametrize("method", ["submit", "map", "product"])
def test_concurrent_calls_outside_a_flow(method: str) -> None:
    @checkpoint
    def work(x: int) -> int:
        return x

    with pytest.raises(KitaruContextError, match="only available inside a running @flow"):
        if method == "submit":
            work.submit(1)
        else:
            getattr(work, method)([1, 2])


SAVE_MSG = "kitaru.save() can only be called inside a @checkpoint."


def test_save_outside_a_flow() -> None:
    with pytest.raises(KitaruContextError, match=f"^{re.escape(SAVE_MSG)}$"):
        kitaru.save("x", 1)


def test_load_outside_a_flow() -> None:
    with pytest.raises(KitaruContextError, match=r"can only be called inside a @checkpoint\."):
        kitaru.load("kr-whatever", "x")


def test_save_and_load_in_the_flow_body_are_refused() -> None:
    caught: dict[str, BaseException] = {}

    @flow
    def body() -> str:
        try:
            kitaru.save("x", 1)
        except KitaruContextError as exc:
            caught["save"] = exc
        try:
            kitaru.load("kr-x", "x")
        except KitaruContextError as exc:
            caught["load"] = exc
        return "done"

    assert body.run().wait() == "done"
    assert str(caught["save"]) == SAVE_MSG
    assert "can only be called inside a @checkpoint." in str(caught["load"])


def test_log_outside_a_flow() -> None:
    with pytest.raises(
        KitaruContextError, match=r"^kitaru\.log\(\) can only be called inside a @flow\.$"
    ):
        kitaru.log(a=1)
