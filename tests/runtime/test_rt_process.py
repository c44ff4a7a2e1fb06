"""A runner that dies (SIGKILL) or is interrupted (Ctrl-C) is reported failed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kitaru import KitaruExecutionError
from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.runtime.flow import FlowHandle

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

KILL_SCRIPT = """
import os, sys, time
from kitaru import checkpoint, flow
from kitaru.runtime import _get_current_execution_id

MARKER = sys.argv[1]

@checkpoint
def first() -> int:
    return 1

@checkpoint
def hang() -> None:
    with open(MARKER + ".tmp", "w") as fh:
        fh.write(_get_current_execution_id())
    os.replace(MARKER + ".tmp", MARKER)
    time.sleep(60)

@flow
def doomed() -> None:
    first()
    hang()

if __name__ == "__main__":
    doomed.run()
"""

INTERRUPT_SCRIPT = """
import os, signal, sys
from kitaru import checkpoint, flow
from kitaru.runtime import _get_current_execution_id

@checkpoint
def ctrl_c() -> None:
    with open(sys.argv[1], "w") as fh:
        fh.write(_get_current_execution_id())
    os.kill(os.getpid(), signal.SIGINT)

@flow
def interrupted() -> None:
    ctrl_c()

if __name__ == "__main__":
    interrupted.run()
"""


def _start(script: str, tmp_path: Path, project: Path) -> tuple[subprocess.Popen[bytes], Path]:
    path = tmp_path / "runner_script.py"
    path.write_text(textwrap.dedent(script))
    marker = tmp_path / "marker.txt"
    proc = subprocess.Popen(
        [sys.executable, str(path), str(marker)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, marker


def _wait_for(marker: Path, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.is_file():
            return marker.read_text()
        if proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"runner exited early ({proc.returncode}): {err.decode()}")
        time.sleep(0.02)
    raise AssertionError("the checkpoint never started")


def test_sigkilled_runner_is_reported_failed(tmp_path: Path, project_dir: Path) -> None:
    proc, marker = _start(KILL_SCRIPT, tmp_path, project_dir)
    try:
        exec_id = _wait_for(marker, proc)
        # while the runner lives the execution is running
        client = KitaruClient()
        assert client.executions.get(exec_id).status == ExecutionStatus.RUNNING
        assert [e.exec_id for e in client.executions.list(status="running")] == [exec_id]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    execution = KitaruClient().executions.get(exec_id)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.status_reason == "the runner process exited"
    assert execution.failure is not None
    statuses = {c.invocation_id: c.status for c in execution.checkpoints}
    assert statuses["first"] == "completed"
    assert [e.exec_id for e in KitaruClient().executions.list(status="failed")] == [exec_id]
    assert KitaruClient().executions.list(status="running") == []
    assert KitaruClient().executions.latest(status="failed").exec_id == exec_id
    summary = KitaruClient().executions.list()[0]
    assert summary.status == ExecutionStatus.FAILED
    assert summary.status_reason == "the runner process exited"
    handle = FlowHandle(exec_id, project_dir / ".kitaru")
    assert handle.status == ExecutionStatus.FAILED
    with pytest.raises(KitaruExecutionError, match="kitaru executions retry"):
        handle.wait(timeout=5)


def test_ctrl_c_records_failed_interrupted(tmp_path: Path, project_dir: Path) -> None:
    proc, marker = _start(INTERRUPT_SCRIPT, tmp_path, project_dir)
    try:
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode != 0
    assert b"KeyboardInterrupt" in err
    exec_id = marker.read_text()
    execution = KitaruClient().executions.get(exec_id)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.status_reason == "interrupted"
    assert execution.failure is not None
    call = execution.checkpoints[0]
    assert call.status == "failed"
    # the state was recorded by the runner itself, not inferred from a dead runner
    state = json.loads(
        (project_dir / ".kitaru" / "executions" / exec_id / "state.json").read_text()
    )
    assert state["status"] == "failed"
    assert state["status_reason"] == "interrupted"


def test_keyboard_interrupt_in_process_is_recorded_and_reraised() -> None:
    from kitaru import checkpoint, flow

    @checkpoint
    def stop() -> None:
        raise KeyboardInterrupt

    @flow
    def interrupted() -> None:
        stop()

    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    execution = KitaruClient().executions.latest()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.status_reason == "interrupted"
    assert execution.checkpoints[0].status == "failed"
