"""Helpers shared by the CLI tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import Result

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
