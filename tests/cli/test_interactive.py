"""``kitaru executions input --interactive`` on a real pseudo-terminal (the installed script)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import run_flow, write_flows

from kitaru.client import KitaruClient
from kitaru.store import Store

KITARU = Path(sys.executable).parent / "kitaru"

pytestmark = pytest.mark.skipif(
    not KITARU.exists() or sys.platform == "win32", reason="needs the kitaru script and a pty"
)


class Terminal:
    """``kitaru ARGS`` with stdin/stdout/stderr on a pseudo-terminal."""

    def __init__(self, *args: str, cwd: Path) -> None:
        master, slave = os.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
        env["NO_COLOR"] = "1"
        self.proc = subprocess.Popen(
            [str(KITARU), *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        self.master = master
        self.output = b""

    def expect(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            ready, _, _ = select.select([self.master], [], [], deadline - time.monotonic())
            if not ready:
                raise AssertionError(f"{text!r} not seen in:\n{self.text}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the other side closed
                chunk = b""
            if not chunk:
                raise AssertionError(f"{text!r} not seen before exit:\n{self.text}")
            self.output += chunk

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 15.0) -> int:
        code = self.proc.wait(timeout=timeout)
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")


@pytest.fixture
def two_waiting(project_dir: Path) -> tuple[str, str]:
    Store.init(project_dir)
    flows = write_flows(project_dir)
    first = run_flow(f"{flows}:approval", topic="one").exec_id
    second = run_flow(f"{flows}:approval", topic="two").exec_id
    return first, second


def _pending(exec_id: str) -> list[str]:
    return [w.name for w in KitaruClient().executions.pending_waits(exec_id)]


def test_sweep_continue_and_abort(project_dir: Path, two_waiting: tuple[str, str]) -> None:
    first, second = two_waiting
    term = Terminal("executions", "input", "--interactive", cwd=project_dir)
    try:
        term.expect("Action [c=continue, a=abort, s=skip, q=quit]: ")
        assert "[1/2]" in term.text and f"  Execution: {second}" in term.text  # newest first
        assert "  Question: Ship it?" in term.text
        assert '      "type": "boolean"' in term.text
        term.send("x")  # not an action: asked again
        term.send("c")
        term.expect("JSON value for result (empty for null): ")
        term.send("maybe")
        term.expect("Invalid JSON: Expecting value (line 1, column 1). Try again.")
        term.send("true")
        term.expect(f"Resolved wait input for execution: {second}")
        term.expect("[2/2]")
        term.expect("Action")
        term.send("a")
        term.expect(f"Aborted wait for execution: {first}")
        assert term.finish() == 0, term.text
    finally:
        term.close()
    assert _pending(second) == [] and _pending(first) == []
    client = KitaruClient()
    assert client.executions.get(second).status.value == "waiting"  # answered; resume next
    assert client.executions.get(first).status.value == "cancelled"


def test_one_execution_skip_quit_and_failures(
    project_dir: Path, two_waiting: tuple[str, str]
) -> None:
    first, _second = two_waiting
    term = Terminal("executions", "input", first, "-i", cwd=project_dir)
    try:
        term.expect("Action")
        assert "[1/1]" in term.text
        term.send("continue")
        term.expect("JSON value")
        term.send('"yes"')  # valid JSON, but the schema wants a boolean
        term.expect("Error resolving wait 'approve': Wait input failed validation")
        assert term.finish() == 1, term.text
    finally:
        term.close()
    assert _pending(first) == ["approve"]
    term = Terminal("executions", "input", "--interactive", cwd=project_dir)
    try:
        term.expect("Action")
        term.send("s")
        term.expect("[2/2]")
        term.expect("Action")
        term.send("q")
        assert term.finish() == 0, term.text
        assert "Resolved" not in term.text
    finally:
        term.close()
    assert _pending(first) == ["approve"]


def test_nothing_to_answer(project_dir: Path) -> None:
    Store.init(project_dir)
    term = Terminal("executions", "input", "--interactive", cwd=project_dir)
    try:
        term.expect("No pending waits found for any execution.")
        assert term.finish() == 0
    finally:
        term.close()
