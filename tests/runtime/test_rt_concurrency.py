"""``.submit()``, ``.map()``, ``.product()``, ``after=`` and settling pending work."""

from __future__ import annotations

import threading
import time

from rt_helpers import call_records

from kitaru import checkpoint, flow
from kitaru.client import ExecutionStatus, KitaruClient


def _inv_ids(exec_id: str) -> list[str]:
    return [c.invocation_id for c in KitaruClient().executions.get(exec_id).checkpoints]


def test_submit_returns_a_future_with_result() -> None:
    @checkpoint
    def square(x: int) -> int:
        return x * x

    @flow
    def f() -> int:
        fut = square.submit(7)
        return fut.result()

    handle = f.run()
    assert handle.wait() == 49
    assert _inv_ids(handle.exec_id) == ["square"]


def test_ids_follow_call_order_even_when_calls_finish_in_reverse() -> None:
    finished: list[int] = []
    lock = threading.Lock()

    @checkpoint
    def slow(i: int, delay: float) -> int:
        time.sleep(delay)
        with lock:
            finished.append(i)
        return i

    @flow
    def f() -> list[int]:
        futures = [slow.submit(i, 0.06 - 0.02 * i) for i in range(3)]
        assert [fu.invocation_id for fu in futures] == ["slow", "slow_2", "slow_3"]
        return [fu.result() for fu in futures]

    handle = f.run()
    assert handle.wait() == [0, 1, 2]
    assert finished == [2, 1, 0]
    execution = KitaruClient().executions.get(handle.exec_id)
    by_inv = {c.invocation_id: c for c in execution.checkpoints}
    assert set(by_inv) == {"slow", "slow_2", "slow_3"}
    for i, inv in enumerate(["slow", "slow_2", "slow_3"]):
        assert by_inv[inv].artifacts[0].load() == i
    # journal order is call order
    assert [r["invocation_id"] for r in call_records(handle.exec_id)] == [
        "slow",
        "slow_2",
        "slow_3",
    ]


def test_map_gives_results_in_order() -> None:
    @checkpoint
    def inc(x: int) -> int:
        time.sleep(0.01 * (3 - x))
        return x + 1

    @flow
    def f() -> list[int]:
        futures = inc.map([1, 2, 3])
        assert len(futures) == 3
        return futures.result()

    handle = f.run()
    assert handle.wait() == [2, 3, 4]
    assert _inv_ids(handle.exec_id) == ["inc", "inc_2", "inc_3"]


def test_map_futures_individually() -> None:
    @checkpoint
    def inc(x: int) -> int:
        return x + 1

    @flow
    def f() -> list[int]:
        return [fu.result() for fu in inc.map([10, 20])]

    assert f.run().wait() == [11, 21]


def test_map_zips_several_iterables() -> None:
    @checkpoint
    def add(a: int, b: int) -> int:
        return a + b

    @flow
    def f() -> list[int]:
        return add.map([1, 2, 3], [10, 20, 30]).result()

    assert f.run().wait() == [11, 22, 33]


def test_map_with_keyword_iterables() -> None:
    @checkpoint
    def add(a: int, b: int) -> int:
        return a * 100 + b

    @flow
    def f() -> list[int]:
        return add.map([1, 2], b=[3, 4]).result()

    assert f.run().wait() == [103, 204]


def test_product_makes_one_call_per_combination() -> None:
    @checkpoint
    def pair(a: int, b: int) -> tuple[int, int]:
        return (a, b)

    @flow
    def f() -> list[tuple[int, int]]:
        return pair.product([1, 2], [3, 4]).result()

    handle = f.run()
    assert handle.wait() == [(1, 3), (1, 4), (2, 3), (2, 4)]
    assert _inv_ids(handle.exec_id) == ["pair", "pair_2", "pair_3", "pair_4"]


def test_unpack_splits_tuple_outputs() -> None:
    @checkpoint
    def split(x: int) -> tuple[int, str]:
        return (x, str(x))

    @flow
    def f() -> tuple[list[int], list[str]]:
        nums, texts = split.map([1, 2, 3]).unpack()
        return nums, texts

    assert f.run().wait() == ([1, 2, 3], ["1", "2", "3"])


def test_after_orders_calls() -> None:
    events: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    @checkpoint
    def first() -> str:
        with lock:
            events.append(("first", "start", time.monotonic()))
        time.sleep(0.08)
        with lock:
            events.append(("first", "end", time.monotonic()))
        return "a"

    @checkpoint
    def second() -> str:
        with lock:
            events.append(("second", "start", time.monotonic()))
        return "b"

    @flow
    def f() -> list[str]:
        a = first.submit()
        b = second.submit(after=[a])
        return [b.result(), a.result()]

    handle = f.run()
    assert handle.wait() == ["b", "a"]
    times = {(name, kind): t for name, kind, t in events}
    assert times[("second", "start")] >= times[("first", "end")]
    assert [e[:2] for e in events] == [("first", "start"), ("first", "end"), ("second", "start")]


def test_after_on_a_direct_call_and_on_map() -> None:
    order: list[str] = []

    @checkpoint
    def slow(n: int) -> None:
        time.sleep(0.05)
        order.append("slow")

    @checkpoint
    def quick(x: int = 0) -> None:
        order.append(f"quick{x}")

    @flow
    def f() -> None:
        s = slow.submit(1)
        quick.map([1, 2], after=s).result()
        s2 = slow.submit(2)
        quick(after=[s2])

    f.run().wait()
    assert order[0] == "slow"
    assert sorted(order[1:3]) == ["quick1", "quick2"]
    assert order[3:] == ["slow", "quick0"]


def test_flow_waits_for_pending_submitted_work() -> None:
    done = threading.Event()

    @checkpoint
    def background() -> str:
        time.sleep(0.1)
        done.set()
        return "bg"

    @flow
    def f() -> str:
        background.submit()  # never awaited in the body
        return "body done"

    handle = f.run()
    assert done.is_set()
    assert handle.status == ExecutionStatus.COMPLETED
    assert handle.wait() == "body done"
    calls = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert [(c.invocation_id, c.status) for c in calls] == [("background", "completed")]
    assert calls[0].artifacts[0].load() == "bg"


def test_failing_submitted_call_fails_the_flow() -> None:
    @checkpoint
    def bad() -> None:
        raise ValueError("async boom")

    @checkpoint
    def good() -> int:
        return 1

    @flow
    def f() -> str:
        good.submit()
        bad.submit()  # failure never observed in the body
        return "body done"

    handle = f.run()
    assert handle.status == ExecutionStatus.FAILED
    execution = KitaruClient().executions.get(handle.exec_id)
    assert execution.failure is not None
    assert execution.failure.exception_type == "ValueError"
    assert "async boom" in execution.failure.message
    statuses = {c.invocation_id: c.status for c in execution.checkpoints}
    assert statuses == {"good": "completed", "bad": "failed"}


def test_failing_map_element_fails_the_flow() -> None:
    @checkpoint
    def maybe(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    @flow
    def f() -> list[int]:
        return maybe.map([1, 2, 3]).result()

    handle = f.run()
    assert handle.status == ExecutionStatus.FAILED
    statuses = {
        c.invocation_id: c.status for c in KitaruClient().executions.get(handle.exec_id).checkpoints
    }
    assert statuses["maybe_2"] == "failed"
    assert statuses["maybe"] == "completed"
