"""A runner SIGKILLed at any point leaves a failed, retryable execution that retries correctly."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from runner_helpers import (
    attempt_statuses,
    call_statuses,
    effect_counts,
    handle,
    run_script,
    settle,
    start_script,
    stop,
    wait_for_marker,
    write_script,
)

from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.store import RUNNER_EXITED

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHAIN = """
def hold(point):
    # Stop here (until killed) when the HOLD file names this point.
    if os.path.exists(_p("HOLD")) and open(_p("HOLD")).read() == point:
        mark("AT_" + point)
        time.sleep(60)


@checkpoint
def one(x: int) -> int:
    effect("one")
    return x + 1


@checkpoint
def two(x: int) -> int:
    effect("two")
    hold("inside")
    return x * 2


@checkpoint
def three(x: int) -> dict:
    effect("three")
    return {"x": x, "tag": "done"}


@flow
def chain(x: int) -> dict:
    hold("before_first")
    a = one(x)
    hold("between")
    b = two(a)
    c = three(b)
    return {"a": a, "b": b, "c": c}


if __name__ == "__main__":
    print(chain.run(int(sys.argv[1])).exec_id)
"""

# What ran before the kill, and which calls were recorded completed by then.
POINTS = {
    "before_first": ({}, {}),
    "between": ({"one": 1}, {"one": "completed"}),
    # The call the runner died in reads as failed, like its execution (read-time status).
    "inside": ({"one": 1, "two": 1}, {"one": "completed", "two": "failed"}),
}


def _killed_at(project_dir: Path, point: str) -> tuple[Path, str]:
    """Run CHAIN in a subprocess, SIGKILL it at ``point``; return the script and exec id."""
    script = write_script(project_dir, "chain_script", CHAIN)
    (project_dir / "HOLD").write_text(point)
    proc = start_script(script, "4")
    try:
        exec_id = wait_for_marker(project_dir / f"AT_{point}", proc)
        assert KitaruClient().executions.get(exec_id).status == ExecutionStatus.RUNNING
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop(proc)
    assert proc.returncode == -signal.SIGKILL
    (project_dir / "HOLD").unlink()
    return script, exec_id


@pytest.mark.parametrize("point", sorted(POINTS))
def test_retry_after_sigkill(project_dir: Path, point: str) -> None:
    script, exec_id = _killed_at(project_dir, point)

    ran_before, recorded = POINTS[point]
    crashed = KitaruClient().executions.get(exec_id)
    assert crashed.status == ExecutionStatus.FAILED
    assert crashed.status_reason == RUNNER_EXITED
    assert crashed.failure is not None
    assert call_statuses(crashed) == recorded
    assert effect_counts(project_dir) == ran_before

    retried = KitaruClient().executions.retry(exec_id)
    assert retried.exec_id == exec_id
    result = handle(exec_id).wait(timeout=20)
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.status_reason is None
    assert call_statuses(execution) == {
        "one": "completed",
        "two": "completed",
        "three": "completed",
    }
    # Finished checkpoints did not run again; the interrupted one (if any) ran once more.
    after_retry = effect_counts(project_dir)
    expected = {"one": 1, "two": 1, "three": 1}
    if point == "inside":
        expected["two"] = 2
    assert after_retry == expected

    # An uninterrupted run of the same flow gives the same result.
    reference = run_script(script, "4")
    assert reference.returncode == 0, reference.stderr
    reference_id = reference.stdout.strip().splitlines()[-1]
    assert reference_id != exec_id
    assert (
        result
        == handle(reference_id).get()
        == {
            "a": 5,
            "b": 10,
            "c": {"x": 10, "tag": "done"},
        }
    )


def test_attempt_killed_inside_a_checkpoint_stays_in_its_history(project_dir: Path) -> None:
    _script, exec_id = _killed_at(project_dir, "inside")
    assert attempt_statuses(KitaruClient().executions.get(exec_id), "two") == ["failed"]
    KitaruClient().executions.retry(exec_id)
    handle(exec_id).wait(timeout=20)
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.COMPLETED
    assert attempt_statuses(execution, "one") == ["completed"]
    assert attempt_statuses(execution, "two") == ["failed", "completed"]
