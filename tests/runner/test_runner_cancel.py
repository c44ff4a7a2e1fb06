"""Cancel from outside: a running execution stops at its next checkpoint boundary."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from runner_helpers import (
    effects,
    forget_module,
    handle,
    import_script,
    runner_alive,
    settle,
    start_script,
    stop,
    unique_stem,
    wait_for_marker,
    wait_until,
    write_script,
)

from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.errors import KitaruExecutionError, KitaruStateError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX runner processes")

LOOP = """
@checkpoint
def step(i: int) -> int:
    effect(f"step {i}")
    if i == 0:
        mark("STARTED")
    time.sleep(0.2)
    return i


@checkpoint
def busy() -> int:
    effect("busy")
    mark("BUSY")
    gate("GO")
    return 0


@checkpoint
def boom() -> int:
    raise RuntimeError("boom on purpose")


@flow
def looper(n: int) -> int:
    total = 0
    for i in range(n):
        try:
            total += step(i)
        except Exception:
            pass
    return total


@flow
def busy_flow() -> int:
    try:
        busy()
    except Exception:
        pass
    for i in range(3):
        try:
            step(i)
        except Exception:
            pass
    return 1


@flow
def failing() -> int:
    return boom()


if __name__ == "__main__":
    print(looper.run(int(sys.argv[1])).exec_id)
"""


def _target(project_dir: Path) -> Path:
    return write_script(project_dir, unique_stem("loop"), LOOP)


def _start_detached(path: Path, flow_name: str, **args: object) -> str:
    """Start a flow with a detached runner (client.executions.run(..., detach=True))."""
    try:
        return KitaruClient().executions.run(f"{path}:{flow_name}", args=args, detach=True).exec_id
    finally:
        forget_module(path)


def _assert_cancelled_cleanly(exec_id: str, project_dir: Path) -> None:
    """Nothing ran after the cancel, every started step finished, and the runner is gone."""
    at_cancel = effects(project_dir)
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.status_reason == "cancelled by request"
    assert effects(project_dir) == at_cancel  # the runner has exited: nothing more can run
    steps = [c for c in execution.checkpoints if c.name == "step"]
    assert steps and all(c.status == "completed" for c in steps)
    assert len(steps) == sum(1 for line in at_cancel if line.startswith("step "))
    assert len(steps) < 100
    with pytest.raises(KitaruExecutionError) as caught:
        handle(exec_id).wait(timeout=5)
    assert caught.value.status == "cancelled"
    assert "kitaru executions retry" not in str(caught.value)


def test_cancel_a_detached_runner(project_dir: Path) -> None:
    exec_id = _start_detached(_target(project_dir), "looper", n=100)
    wait_for_marker(project_dir / "STARTED")
    cancelled = KitaruClient().executions.cancel(exec_id, timeout=10)
    assert cancelled.status == ExecutionStatus.CANCELLED
    assert cancelled.cancel_requested is True
    _assert_cancelled_cleanly(exec_id, project_dir)
    with pytest.raises(KitaruStateError):
        KitaruClient().executions.cancel(exec_id)
    with pytest.raises(KitaruStateError, match="Only failed executions can be retried"):
        KitaruClient().executions.retry(exec_id)


def test_cancel_a_flow_run_in_a_subprocess(project_dir: Path) -> None:
    proc = start_script(_target(project_dir), "100")
    try:
        exec_id = wait_for_marker(project_dir / "STARTED", proc)
        cancelled = KitaruClient().executions.cancel(exec_id, timeout=10)
        assert cancelled.status == ExecutionStatus.CANCELLED
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out.strip().splitlines()[-1] == exec_id
    finally:
        stop(proc)
    _assert_cancelled_cleanly(exec_id, project_dir)


def test_cancel_of_finished_executions_is_a_state_error(project_dir: Path) -> None:
    path = _target(project_dir)
    module = import_script(path)
    try:
        completed = module.looper.run(1)
        failed = module.failing.run()
    finally:
        forget_module(path)
    client = KitaruClient()
    assert client.executions.get(completed.exec_id).status == ExecutionStatus.COMPLETED
    assert client.executions.get(failed.exec_id).status == ExecutionStatus.FAILED
    for exec_id in (completed.exec_id, failed.exec_id):
        with pytest.raises(KitaruStateError, match="only running or waiting"):
            client.executions.cancel(exec_id, timeout=1)
        assert client.executions.get(exec_id).cancel_requested is False


def test_cancel_with_a_short_timeout_while_a_checkpoint_is_busy(project_dir: Path) -> None:
    exec_id = _start_detached(_target(project_dir), "busy_flow")
    wait_for_marker(project_dir / "BUSY")
    started = time.monotonic()
    pending = KitaruClient().executions.cancel(exec_id, timeout=0.05)
    assert time.monotonic() - started < 5
    assert pending.status == ExecutionStatus.RUNNING
    assert pending.cancel_requested is True
    assert runner_alive(exec_id)
    (project_dir / "GO").touch()  # let the busy checkpoint finish
    final = wait_until(
        lambda: (
            (e := KitaruClient().executions.get(exec_id)).status != ExecutionStatus.RUNNING and e
        ),
        what="the cancel to take effect",
    )
    assert final.status == ExecutionStatus.CANCELLED
    execution = settle(exec_id)
    assert [c.invocation_id for c in execution.checkpoints] == ["busy"]
    assert execution.checkpoints[0].status == "completed"
    assert effects(project_dir) == ["busy"]  # no step ran after the cancel


def test_execution_cancel_method(project_dir: Path) -> None:
    exec_id = _start_detached(_target(project_dir), "looper", n=100)
    wait_for_marker(project_dir / "STARTED")
    execution = KitaruClient().executions.get(exec_id)
    assert execution.status == ExecutionStatus.RUNNING
    cancelled = execution.cancel()
    assert cancelled.exec_id == exec_id
    assert cancelled.status == ExecutionStatus.CANCELLED
    _assert_cancelled_cleanly(exec_id, project_dir)
    with pytest.raises(KitaruStateError):
        cancelled.cancel()
