"""Drive the installed ``kitaru`` on a pseudo-terminal (for the interactive commands)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

KITARU = Path(sys.executable).parent / "kitaru"


class Terminal:
    """``kitaru ARGS`` with stdin/stdout/stderr on a pseudo-terminal, KITARU_* unset."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        master, slave = os.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
        env["NO_COLOR"] = "1"
        self.proc = subprocess.Popen(
            [str(KITARU), *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        self.master = master
        self.output = b""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # the other side closed
            chunk = b""
        self.output += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 15.0) -> None:
        """Read until ``text`` appears, or fail showing what was seen."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            if not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{text!r} not seen in:\n{self.text}")

    def send(self, line: str) -> None:
        """Type one line."""
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 15.0) -> int:
        """Wait for the command to exit, keep what it printed last, return its exit code."""
        code = self.proc.wait(timeout=timeout)
        while self._read(0.1):
            pass
        return code

    def close(self) -> None:
        """Kill the command if it still runs and release the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)

    @property
    def text(self) -> str:
        """Everything printed so far, with plain newlines."""
        return self.output.decode(errors="replace").replace("\r\n", "\n")
