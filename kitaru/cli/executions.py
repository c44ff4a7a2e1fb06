"""``kitaru executions``: list and inspect executions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kitaru.cli._client import get_client
from kitaru.cli.output import Snapshot, Table, emit, format_time, output_option

if TYPE_CHECKING:
    from kitaru.models import Execution

__all__ = ["executions"]

_CHECKPOINTS_SHOWN = 4


@click.group()
def executions() -> None:
    """List and inspect executions.

    Example: kitaru executions list --status waiting
    """


def _wait_name(execution: Execution) -> str:
    wait = execution.pending_wait
    return wait.name if wait is not None else "-"


@executions.command("list")
@click.option("--status", help="Only executions with this status (running, waiting, ...).")
@click.option("--flow", help="Only executions of this flow.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@output_option
def list_executions(status: str | None, flow: str | None, limit: int | None) -> None:
    """List executions, newest first.

    Example: kitaru executions list --flow research --limit 10
    """
    found = get_client().executions.list(status=status, flow=flow, limit=limit)
    rows = [
        [
            e.exec_id,
            e.flow_name or "unknown flow",
            e.status.value,
            format_time(e.started_at),
            e.checkpoint_count,
            _wait_name(e),
            e.original_exec_id or "-",
        ]
        for e in found
    ]
    headers = ["ID", "Flow", "Status", "Started", "Checkpoints", "Pending wait", "Replay of"]
    emit(Table("Kitaru executions", headers, rows), items=[e.to_summary_dict() for e in found])


def _checkpoints(execution: Execution) -> str:
    calls = execution.checkpoints
    if not calls:
        return "none"
    shown = ", ".join(f"{c.name} ({c.status})" for c in calls[:_CHECKPOINTS_SHOWN])
    more = len(calls) - _CHECKPOINTS_SHOWN
    return f"{shown}, ... (+{more} more)" if more > 0 else shown


@executions.command("get")
@click.argument("exec_id")
@output_option
def get_execution(exec_id: str) -> None:
    """Show one execution; a unique id prefix is enough.

    Example: kitaru executions get kr-a8f3c2
    """
    e = get_client().executions.get(exec_id)
    wait = e.pending_wait
    rows = [
        ("Execution ID", e.exec_id),
        ("Flow", e.flow_name or "not available"),
        ("Status", e.status.value),
        ("Started", format_time(e.started_at)),
        ("Ended", format_time(e.ended_at)),
        ("Stack", e.stack_name or "not available"),
        ("Pending wait", wait.name if wait else "none"),
        ("Wait question", (wait.question or "not set") if wait else "none"),
        ("Failure", e.failure.message if e.failure else "none"),
        ("Checkpoints", _checkpoints(e)),
        ("Artifacts", e.artifact_count),
        ("Replay of", e.original_exec_id or "none"),
    ]
    emit(Snapshot("Kitaru execution", rows), item=e.to_dict())
