"""Helpers for the wait tests: background runs, polling for pending waits, record files."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kitaru.client import KitaruClient


class Background:
    """Run ``flow.run(...)`` then ``handle.wait()`` on a thread; keep the outcome."""

    def __init__(self, start: Callable[[], Any]) -> None:
        self.outcome: dict[str, Any] = {}
        self.handle: Any = None

        def target() -> None:
            try:
                self.handle = start()
                self.outcome["status"] = self.handle.status.value
                self.outcome["result"] = self.handle.wait(timeout=30)
            except BaseException as exc:  # reported by the test
                self.outcome["error"] = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 30) -> dict[str, Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the flow thread did not finish"
        return self.outcome


def exec_ids(project: Path | None = None) -> list[str]:
    base = (project or Path.cwd()) / ".kitaru" / "executions"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "state.json").exists())


def wait_for_pending(
    client: KitaruClient,
    name: str,
    *,
    exec_id: str | None = None,
    timeout: float = 20,
    known: set[str] | None = None,
) -> tuple[str, Any]:
    """Poll until an execution has a pending wait called ``name``; return (exec_id, wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = [exec_id] if exec_id else [i for i in exec_ids() if i not in (known or set())]
        for candidate in ids:
            try:
                pending = client.executions.pending_waits(candidate)
            except Exception:
                continue
            for wait in pending:
                if wait.name == name and state(candidate)["status"] != "running":
                    # (the wait record is written just before the status turns ``waiting``)
                    return candidate, wait
        time.sleep(0.01)
    raise AssertionError(f"no pending wait {name!r} appeared")


def wait_until(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def wait_files(exec_id: str) -> list[Path]:
    return sorted((Path.cwd() / ".kitaru" / "executions" / exec_id / "waits").glob("*.json"))


def wait_record(exec_id: str, seq: int = 1) -> dict[str, Any]:
    path = next(p for p in wait_files(exec_id) if p.name.startswith(f"{seq:04d}-"))
    return json.loads(path.read_text())


def call_records(exec_id: str) -> list[dict[str, Any]]:
    base = Path.cwd() / ".kitaru" / "executions" / exec_id / "calls"
    return [json.loads(p.read_text()) for p in sorted(base.glob("*.json"))]


def state(exec_id: str) -> dict[str, Any]:
    path = Path.cwd() / ".kitaru" / "executions" / exec_id / "state.json"
    return json.loads(path.read_text())


def settle(client: KitaruClient, exec_id: str, timeout: float = 30) -> Any:
    """Poll until the execution is completed, failed or cancelled; return it."""

    def done() -> Any:
        execution = client.executions.get(exec_id)
        return execution if execution.status.value in ("completed", "failed", "cancelled") else None

    return wait_until(done, timeout, f"execution {exec_id} to settle")
