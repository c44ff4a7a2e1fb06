"""Log lines as text, and ``--follow``: stream an execution's logs until it settles.

Shared by ``executions logs --follow`` and the ``--follow`` of resume, retry and replay.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from kitaru.cli.output import echo_lines, emit_event, format_time, output_format

if TYPE_CHECKING:
    from kitaru.client import KitaruClient
    from kitaru.models import Execution, LogEntry

__all__ = ["entry_line", "exit_with", "follow", "group_header", "group_name", "grouped_lines"]

_RULE = "─" * 30


def entry_line(entry: LogEntry, verbosity: int) -> str:
    """One log entry as text: the message; ``-v`` adds time and level, ``-vv`` the checkpoint."""
    if verbosity <= 0:
        return entry.message
    stamp = format_time(entry.timestamp) if entry.timestamp else "-"
    level = (entry.level or "INFO").upper()
    if verbosity == 1:
        return f"{stamp} {level:<5} {entry.message}"
    return f"{stamp} {level:<5} [{group_name(entry)}] {entry.message}"


def group_name(entry: LogEntry) -> str:
    """The checkpoint a line belongs to (``runner`` for flow-level lines)."""
    if entry.checkpoint_name:
        return entry.checkpoint_name
    if entry.source == "runner":
        return "runner"
    return entry.module or "unknown"


def group_header(name: str) -> str:
    """The header line of a ``--grouped`` block."""
    return f"── checkpoint: {name} {_RULE}"


def grouped_lines(entries: Sequence[LogEntry], verbosity: int) -> list[str]:
    """Entries grouped by checkpoint in first-seen order, a header per group, blank between."""
    groups: dict[str, list[LogEntry]] = {}
    for entry in entries:
        groups.setdefault(group_name(entry), []).append(entry)
    lines: list[str] = []
    for name, members in groups.items():
        if lines:
            lines.append("")
        lines.append(group_header(name))
        lines += [entry_line(e, verbosity) for e in members]
    return lines


def _key(entry: LogEntry) -> tuple[Any, ...]:
    return (
        entry.timestamp,
        entry.level,
        entry.checkpoint_name,
        entry.module,
        entry.filename,
        entry.lineno,
        entry.message,
    )


def _failure_reason(execution: Execution) -> str:
    if execution.failure is not None and execution.failure.message:
        return execution.failure.message
    return execution.status_reason or "execution failed"


class _Follower:
    def __init__(
        self,
        client: KitaruClient,
        exec_id: str,
        *,
        checkpoint: str | None,
        source: str | None,
        limit: int | None,
        verbosity: int,
        grouped: bool,
    ) -> None:
        self.client, self.exec_id = client, exec_id
        self.filters = {"checkpoint": checkpoint, "source": source, "limit": limit}
        self.verbosity, self.grouped = verbosity, grouped
        self.json = output_format() == "json"
        self.seen: set[tuple[Any, ...]] = set()
        self.announced: set[str] = set()
        self.group: str | None = None

    def print_new(self) -> None:
        entries = self.client.executions.logs(self.exec_id, **self.filters)  # type: ignore[arg-type]
        for entry in entries:
            key = _key(entry)
            if key in self.seen:
                continue
            self.seen.add(key)
            if self.json:
                emit_event("log", entry.to_dict())
                continue
            lines = []
            if self.grouped and group_name(entry) != self.group:
                if self.group is not None:
                    lines.append("")
                self.group = group_name(entry)
                lines.append(group_header(self.group))
            lines.append(entry_line(entry, self.verbosity))
            echo_lines(lines)

    def announce_waits(self) -> None:
        for wait in self.client.executions.pending_waits(self.exec_id):
            name = wait.name or "unknown"
            if name in self.announced:
                continue
            self.announced.add(name)
            if self.json:
                item = {"wait_name": name, "wait_id": wait.wait_id, "question": wait.question}
                emit_event("waiting", item)
            else:
                echo_lines([f"[Execution is waiting for input on: {name}]"])

    def terminal(self, execution: Execution) -> int:
        status = execution.status.value
        if status == "completed":
            message, code = "Execution completed successfully", 0
        elif status == "failed":
            message, code = _failure_reason(execution), 1
        else:
            message, code = "Execution cancelled", 1
        if self.json:
            item: dict[str, Any] = {"status": status, "message": message}
            if status == "failed":
                item["recovery_command"] = f"kitaru executions retry {self.exec_id}"
            emit_event("terminal", item)
        elif status == "failed":
            echo_lines(
                [
                    f"[Execution failed: {message}]",
                    "To retry this failed execution, run:",
                    "",
                    f"  kitaru executions retry {self.exec_id}",
                ]
            )
        else:
            echo_lines([f"[{message}]"])
        return code

    def interrupted(self) -> int:
        if self.json:
            emit_event("interrupted", {"message": "Log follow interrupted"})
        else:
            echo_lines(["[Log follow interrupted]"])
        return 1


def follow(
    client: KitaruClient,
    exec_id: str,
    *,
    checkpoint: str | None = None,
    source: str | None = None,
    limit: int | None = None,
    interval: float = 1.0,
    verbosity: int = 0,
    grouped: bool = False,
    waiting_code: int = 0,
) -> int:
    """Stream new log lines of ``exec_id`` until it settles; return the exit code.

    Completed: 0. Failed or cancelled: 1. Waiting: each pending wait is announced once; while
    the runner still polls for an answer, following goes on; once the runner has exited (the
    execution settled into waiting, to be resumed) it stops with ``waiting_code``.
    Ctrl-C: ``[Log follow interrupted]`` and 1.
    """
    follower = _Follower(
        client,
        exec_id,
        checkpoint=checkpoint,
        source=source,
        limit=limit,
        verbosity=verbosity,
        grouped=grouped,
    )
    try:
        while True:
            follower.print_new()
            execution = client.executions.get(exec_id)
            status = execution.status.value
            if status in ("completed", "failed", "cancelled", "waiting"):
                follower.print_new()  # lines written between the fetch and the status read
                if status == "waiting":
                    follower.announce_waits()
                    if not execution.runner_alive:
                        return waiting_code
                    time.sleep(interval)
                    continue
                return follower.terminal(execution)
            time.sleep(interval)
    except KeyboardInterrupt:
        return follower.interrupted()


def exit_with(code: int) -> None:
    """Leave the command with ``code`` (0 returns normally)."""
    if code:
        click.get_current_context().exit(code)
