"""The seed page's wait-and-resume example works as written."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import kitaru
from kitaru.errors import KitaruStateError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples/execution_management/wait_and_resume.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("wait_and_resume", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _find_pending(client, topic: str, wait_name: str, deadline: float):
    while time.monotonic() < deadline:
        for execution in client.executions.list(flow="wait_for_approval_flow", limit=20):
            full = client.executions.get(execution.exec_id)
            pending = full.pending_wait
            if pending and pending.name == wait_name and pending.metadata["topic"] == topic:
                return full.exec_id, client.executions.pending_waits(full.exec_id)
        time.sleep(0.05)
    raise AssertionError(f"no pending wait {wait_name!r} appeared")


def test_wait_example_resolves_both_waits_in_process() -> None:
    example = _load_example()
    client = kitaru.KitaruClient()
    outcome: dict = {}

    def run() -> None:
        try:
            handle = example.wait_for_approval_flow.run("v1.0", cache=False)
            outcome["result"] = handle.wait()
        except BaseException as exc:  # reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        exec_id, pending = _find_pending(client, "v1.0", "approve_release", deadline)
        client.executions.input(exec_id, wait=pending[0].wait_id, value=True)
        with suppress(KitaruStateError):
            client.executions.resume(exec_id)
        exec_id, pending = _find_pending(client, "v1.0", "release_details", deadline)
        second = client.executions.input(
            exec_id, wait=pending[0].wait_id, value={"notes": "Bug fixes", "major_version": 2}
        )
        assert second.status.value in {"running", "waiting", "completed"}
        with suppress(KitaruStateError):
            client.executions.resume(exec_id)
    finally:
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"] == "PUBLISHED v2: Draft about v1.0.\nNotes: Bug fixes"
