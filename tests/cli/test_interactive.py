"""``kitaru executions input --interactive`` on a real pseudo-terminal (the installed script)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_helpers import run_flow, write_flows
from pty_terminal import KITARU, Terminal

from kitaru.client import KitaruClient
from kitaru.store import Store

pytestmark = pytest.mark.skipif(
    not KITARU.exists() or sys.platform == "win32", reason="needs the kitaru script and a pty"
)


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
    term = Terminal(["executions", "input", "--interactive"], project_dir)
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
    term = Terminal(["executions", "input", first, "-i"], project_dir)
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
    term = Terminal(["executions", "input", "--interactive"], project_dir)
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
    term = Terminal(["executions", "input", "--interactive"], project_dir)
    try:
        term.expect("No pending waits found for any execution.")
        assert term.finish() == 0
    finally:
        term.close()
