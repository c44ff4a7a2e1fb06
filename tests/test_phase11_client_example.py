"""The seed page's client example works as written."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import kitaru

EXAMPLE = (
    Path(__file__).resolve().parents[1]
    / "examples/execution_management/client_execution_management.py"
)


def _load_example():
    spec = importlib.util.spec_from_file_location("client_execution_management", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_client_example_reports_completed_run_and_artifacts() -> None:
    example = _load_example()
    exec_id, status, result, names, loaded = example.run_workflow(topic="kitaru")
    assert exec_id.startswith("kr-")
    assert status == "completed"
    assert result == "Summary for kitaru."
    assert "summary_context" in names
    assert loaded == {"topic": "kitaru", "summary": "Summary for kitaru."}


def test_client_example_twice_latest_is_newest() -> None:
    example = _load_example()
    first = example.run_workflow(topic="one")[0]
    second = example.run_workflow(topic="two")[0]
    assert second != first
    client = kitaru.KitaruClient()
    assert client.executions.latest(flow="summarize_topic").exec_id == second
    listed = [e.exec_id for e in client.executions.list(flow="summarize_topic")]
    assert listed == [second, first]
