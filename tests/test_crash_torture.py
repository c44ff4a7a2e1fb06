"""kill -9 at random instants of a real run: the store always loads, doctor finds no errors,
and a retry finishes with the result an uninterrupted run gives (reliability plan, T1)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.store import Store
from kitaru.store.check import check_store

SCRIPT = """
import logging
import os
import sys
import time

import kitaru
from kitaru import checkpoint, flow


@checkpoint
def step(i: int) -> dict:
    print(f"step {i}")
    logging.getLogger("torture").warning("warned %d", i)
    kitaru.save(f"big_{i}", "x" * (20_000 + i), type="blob")  # a blob, not inline
    kitaru.log(step=i)
    time.sleep(0.01)
    return {"i": i, "square": i * i}


@flow
def torture(n: int) -> int:
    total = 0
    for i in range(n):
        total += step(i)["square"]
        kitaru.log(progress=i)
    return total


if __name__ == "__main__":
    open(os.path.join(os.path.dirname(__file__), "ready"), "w").close()
    print(torture.run(int(sys.argv[1]), cache=False).exec_id, flush=True)
"""

STEPS = 12
EXPECTED = sum(i * i for i in range(STEPS))
TRIALS = 12


def _run(script: Path, cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env["KITARU_INTERACTIVE"] = "0"
    return subprocess.Popen(
        [sys.executable, str(script), str(STEPS)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.002)


def _no_errors(store_root: Path) -> None:
    report = check_store(Store.open_at(store_root))
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert not errors, errors


def test_kill_nine_at_random_instants_then_retry(project_dir: Path) -> None:
    script = project_dir / "torture_flow.py"
    script.write_text(SCRIPT)
    client = KitaruClient()

    ready = project_dir / "ready"
    assert _run(script, project_dir).wait(timeout=60) == 0
    first = client.executions.latest()
    assert first.status == ExecutionStatus.COMPLETED
    # Kill within the run itself: from the "about to run" marker to the recorded end.
    duration = (first.ended_at - first.started_at).total_seconds() * 1.2

    known = {first.exec_id}
    rng = random.Random(20261126)
    killed_mid_run = 0
    for _ in range(TRIALS):
        ready.unlink()
        proc = _run(script, project_dir)
        try:
            _wait_for(ready)
            time.sleep(rng.uniform(0.0, duration))
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
        _no_errors(project_dir / ".kitaru")
        new = [e for e in client.executions.list() if e.exec_id not in known]
        if not new:
            continue  # killed before the execution was created: nothing to recover
        execution = new[0]
        known.add(execution.exec_id)
        if execution.status == ExecutionStatus.COMPLETED:
            continue  # the run finished before the kill
        killed_mid_run += 1
        assert execution.status == ExecutionStatus.FAILED, execution.status
        execution = client.executions.retry(execution.exec_id)
        deadline = time.monotonic() + 60
        while execution.status not in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
            assert time.monotonic() < deadline, "retry did not finish"
            time.sleep(0.05)
            execution = client.executions.get(execution.exec_id)
        err = project_dir / ".kitaru" / "executions" / execution.exec_id / "runner.err"
        assert execution.status == ExecutionStatus.COMPLETED, (
            execution.failure,
            err.read_text() if err.exists() else None,
        )
        assert [c.status for c in execution.checkpoints] == ["completed"] * STEPS
        steps = {cp.invocation_id: cp for cp in execution.checkpoints}
        assert steps["step_12"].artifacts[0].load() == {"i": STEPS - 1, "square": 121}
        _no_errors(project_dir / ".kitaru")
    assert killed_mid_run >= TRIALS // 3, f"only {killed_mid_run} kills landed mid-run"
    from kitaru.runtime.flow import FlowHandle

    for execution in client.executions.list():
        if execution.status == ExecutionStatus.COMPLETED:
            assert FlowHandle(execution.exec_id, project_dir / ".kitaru").get() == EXPECTED
