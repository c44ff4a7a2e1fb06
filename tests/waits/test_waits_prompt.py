"""The interactive wait prompt, driven through a pseudo-terminal."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wait_helpers import exec_ids, wait_for_pending

from kitaru.models import ExecutionStatus

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")

SCRIPT = """
import fcntl, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty becomes our controlling terminal (Ctrl-C)
import kitaru
from kitaru import checkpoint, flow

@checkpoint
def done(value):
    return value

@flow
def gate(kind):
    schema = None if kind == "none" else bool
    value = kitaru.wait(schema=schema, name="approve", question="Ship it?", timeout=60)
    return done(value)

if __name__ == "__main__":
    handle = gate.run(sys.argv[1])
    print("STATUS", handle.status.value, flush=True)
    if handle.status.value == "completed":
        print("RESULT", repr(handle.get()), flush=True)
"""


class Terminal:
    """A child process attached to a pty; read its output with deadlines."""

    def __init__(self, project: Path, kind: str) -> None:
        script = project / "gate_script.py"
        script.write_text(SCRIPT)
        self.master, slave = os.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
        env.update(KITARU_INTERACTIVE="1", TERM="dumb")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), kind],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=project,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(slave)
        self.output = b""

    def read_until(self, needle: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{needle!r} not seen; output so far: {self.output!r}")
            ready, _, _ = select.select([self.master], [], [], min(remaining, 0.2))
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the child closed the pty
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{needle!r} not seen before EOF: {self.output!r}")
                self.output += chunk
        return self.output

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def terminal(project_dir):
    made: list[Terminal] = []

    def start(kind: str) -> Terminal:
        term = Terminal(project_dir, kind)
        made.append(term)
        return term

    yield start
    for term in made:
        term.close()


def _only_execution(client):
    (exec_id,) = exec_ids()
    return client.executions.get(exec_id)


def test_typing_true_continues_the_flow(terminal, client) -> None:
    term = terminal("bool")
    shown = term.read_until(b"> ")
    assert b"Waiting for input." in shown
    assert b"Ship it?" in shown
    assert b'"type": "boolean"' in shown
    term.type(b"true\n")
    out = term.read_until(b"RESULT")
    term.read_until(b"\n", timeout=5)
    assert b"STATUS completed" in out
    assert b"RESULT True" in term.output
    assert term.proc.wait(20) == 0
    assert _only_execution(client).status == ExecutionStatus.COMPLETED


def test_invalid_line_reprompts_then_accepts(terminal, client) -> None:
    term = terminal("bool")
    term.read_until(b"> ")
    term.type(b'"maybe"\n')
    term.read_until(b"Failed to resolve")
    term.type(b"false\n")
    term.read_until(b"RESULT False")
    assert term.proc.wait(20) == 0


def test_empty_line_submits_null_for_a_gate(terminal, client) -> None:
    term = terminal("none")
    shown = term.read_until(b"> ")
    assert b"Waiting for confirmation." in shown
    term.type(b"\n")
    term.read_until(b"RESULT None")
    assert term.proc.wait(20) == 0
    execution = _only_execution(client)
    assert execution.status == ExecutionStatus.COMPLETED


def test_ctrl_c_at_the_prompt_cancels_the_execution(terminal, client) -> None:
    term = terminal("bool")
    term.read_until(b"> ")
    term.type(b"\x03")
    term.read_until(b"STATUS cancelled")
    term.proc.wait(20)
    execution = _only_execution(client)
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.failure is None
    assert client.executions.pending_waits(execution.exec_id) == []


def test_answer_from_another_process_while_prompting(terminal, client) -> None:
    term = terminal("bool")
    term.read_until(b"> ")
    exec_id, _ = wait_for_pending(client, "approve")
    client.executions.input(exec_id, wait="approve", value=True)
    out = term.read_until(b"RESULT True")
    assert b"Input received from another source" in out
    assert term.proc.wait(20) == 0
    assert client.executions.get(exec_id).status == ExecutionStatus.COMPLETED
