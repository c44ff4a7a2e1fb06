"""Helpers for the runner tests: flow scripts on disk, subprocesses, polling with deadlines.

Every flow script starts with ``PRELUDE``: ``effect(tag)`` appends one line to
``effects.log`` next to the script (so side effects can be counted across processes) and
``mark(name)`` writes the current execution id to a marker file atomically.
"""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.models import Execution
from kitaru.runtime.flow import FlowHandle
from kitaru.store import Store

PRELUDE = '''
import os
import sys
import time

from kitaru import checkpoint, flow
from kitaru.runtime import _get_current_execution_id

HERE = os.path.dirname(os.path.abspath(__file__))


def _p(name):
    return os.path.join(HERE, name)


def effect(tag):
    """One line per side effect, appended in one write."""
    with open(_p("effects.log"), "a") as fh:
        fh.write(tag + "\\n")


def mark(name):
    """Write the current execution id to marker file NAME (atomically)."""
    with open(_p(name + ".tmp"), "w") as fh:
        fh.write(_get_current_execution_id() or "")
    os.replace(_p(name + ".tmp"), _p(name))


def gate(name, limit=20.0):
    """Block until file NAME exists (at most LIMIT seconds)."""
    deadline = time.monotonic() + limit
    while not os.path.exists(_p(name)) and time.monotonic() < deadline:
        time.sleep(0.01)
'''

_counter = itertools.count(1)


def unique_stem(prefix: str) -> str:
    """A module name no other test in this process uses (sys.modules caches by name)."""
    return f"{prefix}_{os.getpid()}_{next(_counter)}"


def write_script(folder: Path, stem: str, body: str) -> Path:
    """Write ``PRELUDE + body`` as ``folder/stem.py`` and return its path.

    ``from __future__`` lines of the body go first, where Python requires them.
    """
    path = folder / f"{stem}.py"
    lines = textwrap.dedent(body).splitlines(keepends=True)
    future = [line for line in lines if line.startswith("from __future__ ")]
    rest = [line for line in lines if not line.startswith("from __future__ ")]
    path.write_text("".join(future) + PRELUDE + "".join(rest))
    return path


def import_script(path: Path) -> ModuleType:
    """Import a script written by ``write_script`` as a module named after its file."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    importlib.invalidate_caches()
    return importlib.import_module(path.stem)


def forget_module(path: Path) -> None:
    """Undo ``import_script``: drop the module and its sys.path entry."""
    sys.modules.pop(path.stem, None)
    folder = str(path.parent)
    while folder in sys.path:
        sys.path.remove(folder)


def effects(folder: Path) -> list[str]:
    """The side-effect lines written so far."""
    path = folder / "effects.log"
    return path.read_text().splitlines() if path.exists() else []


def effect_counts(folder: Path) -> Counter[str]:
    """How often each side effect happened."""
    return Counter(effects(folder))


def child_env() -> dict[str, str]:
    """The environment for a script subprocess (the conftest already cleared KITARU_*)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_script(path: Path, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Run ``python path args...`` in the project folder and wait for it."""
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=Path.cwd(),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_script(path: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``python path args...`` in the project folder (the caller kills it in a finally)."""
    return subprocess.Popen(
        [sys.executable, str(path), *args],
        cwd=Path.cwd(),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[Any]) -> None:
    """Kill a subprocess if it still runs and reap it."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.communicate(timeout=10)
    except Exception:
        pass


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def wait_for_marker(
    marker: Path, proc: subprocess.Popen[Any] | None = None, timeout: float = 20.0
) -> str:
    """Wait for a marker file written by ``mark()``; return its content (an execution id)."""

    def ready() -> str | None:
        if marker.is_file():
            return marker.read_text() or "?"
        if proc is not None and proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"script exited early ({proc.returncode}): {err}")
        return None

    return wait_until(ready, timeout=timeout, what=f"marker {marker.name}")


def store() -> Store:
    """The test project's store."""
    return Store.open_at(Path.cwd() / ".kitaru")


def handle(exec_id: str) -> FlowHandle:
    """A FlowHandle on an execution of the test project's store."""
    return FlowHandle(exec_id, Path.cwd() / ".kitaru")


def runner_alive(exec_id: str) -> bool:
    """Whether some process holds the execution's runner lock."""
    return store().runner_alive(exec_id)


def settle(exec_id: str, timeout: float = 20.0) -> Execution:
    """Wait until the execution is no longer running and its runner lock is free."""
    client = KitaruClient()

    def done() -> Execution | None:
        execution = client.executions.get(exec_id)
        if execution.status == ExecutionStatus.RUNNING or runner_alive(exec_id):
            return None
        return execution

    return wait_until(done, timeout=timeout, what=f"execution {exec_id} to settle")


def attempt_statuses(execution: Execution, invocation_id: str) -> list[str]:
    """The attempt statuses of one checkpoint call, oldest first."""
    for call in execution.checkpoints:
        if call.invocation_id == invocation_id:
            return [a.status for a in call.attempts]
    raise AssertionError(f"no call {invocation_id!r} in {execution.exec_id}")


def call_statuses(execution: Execution) -> dict[str, str]:
    """invocation id -> call status."""
    return {c.invocation_id: c.status for c in execution.checkpoints}
