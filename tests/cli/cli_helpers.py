"""Helpers shared by the CLI tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from kitaru.models import Execution
from kitaru.store import Store, now_iso

Invoke = Callable[..., Result]


def make_execution(
    store: Store, *, flow: str = "f", status: str = "completed", **state: Any
) -> str:
    """Create one execution record directly in ``store`` and return its id."""
    exec_id = store.claim_execution_id()
    spec = {"flow_name": flow, "source": {}, "inputs": {}, "settings": {}, "created_at": now_iso()}
    record = {
        "status": status,
        "flow_name": flow,
        "created_at": now_iso(),
        "status_reason": None,
        "failure": None,
        "result": None,
        "metadata": {},
        "cancel_requested": False,
        "runner": None,
        **state,
    }
    store.create_execution(exec_id, spec, record)
    return exec_id


def parse(text: str) -> dict[str, Any]:
    """Parse one JSON document, asserting it is the only thing printed."""
    assert text.count("\n") <= 1, text
    return json.loads(text)


# A flow module the tests write into their project folder (runners re-import it from there).
FLOWS = """
import os
import time

import kitaru
from kitaru import checkpoint, flow

HERE = os.path.dirname(os.path.abspath(__file__))


@checkpoint
def research(topic: str) -> str:
    print(f"researching {topic}")
    return f"notes on {topic}"


@checkpoint
def write_draft(notes: str) -> str:
    if os.path.exists(os.path.join(HERE, "FAIL")):
        raise RuntimeError("flag file present")
    print("drafting")
    kitaru.save("draft_context", {"notes": notes}, type="context")
    kitaru.save("raw", b"\\x00\\xffraw", type="blob")
    return notes.upper()


@flow
def content_pipeline(topic: str = "AI") -> str:
    print("pipeline start")
    notes = research(topic)
    return write_draft(notes)


@flow
def approval(topic: str = "AI", timeout: float = 0):
    notes = research(topic)
    ok = kitaru.wait(name="approve", question="Ship it?", schema=bool, timeout=timeout)
    print(f"approved: {ok}")
    return notes if ok else None


@flow
def ticker(n: int = 3, delay: float = 0.05) -> int:
    for i in range(n):
        print(f"tick {i}")
        time.sleep(delay)
    return n
"""


def write_flows(folder: Path) -> str:
    """Write the test flows into ``folder`` under a fresh module name; return the file name."""
    name = f"cliflows_{uuid.uuid4().hex[:10]}.py"
    (folder / name).write_text(FLOWS, encoding="utf-8")
    return name


def run_flow(target: str, **args: Any) -> Execution:
    """Run ``file.py:flow`` in this process (foreground) and return the execution."""
    from kitaru.client import KitaruClient

    return KitaruClient().executions.run(target, args=args)


def wait_settled(exec_id: str, timeout: float = 20.0) -> Execution:
    """Poll until the execution is no longer running; return it."""
    from kitaru.client import KitaruClient

    client = KitaruClient()
    deadline = time.monotonic() + timeout
    while True:
        execution = client.executions.get(exec_id)
        if execution.status.value != "running" or time.monotonic() > deadline:
            return execution
        time.sleep(0.05)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Parse JSON Lines output (every line must be JSON)."""
    return [json.loads(line) for line in text.splitlines()]
