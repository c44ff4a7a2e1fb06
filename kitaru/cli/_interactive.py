"""``kitaru executions input --interactive``: sweep pending waits and answer them one by one."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from kitaru.cli._params import parse_json
from kitaru.cli.output import echo_lines, format_time

if TYPE_CHECKING:
    from kitaru.client import KitaruClient
    from kitaru.models import Execution, PendingWait

__all__ = ["is_terminal", "sweep"]

_RULE = "─" * 50
_ACTIONS = {
    "c": "continue",
    "continue": "continue",
    "a": "abort",
    "abort": "abort",
    "s": "skip",
    "skip": "skip",
    "q": "quit",
    "quit": "quit",
}


def is_terminal() -> bool:
    """True when both stdin and stdout are terminals."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _ask(prompt: str) -> str | None:
    """One line from the user, or None at end of input."""
    try:
        return input(prompt)
    except EOFError:
        echo_lines([""])
        return None


def _block(index: int, total: int, execution: Execution, wait: PendingWait) -> list[str]:
    lines = [
        _RULE,
        f"[{index}/{total}]",
        f"  Execution: {execution.exec_id}",
        f"  Flow: {execution.flow_name or 'unknown'}",
        f"  Status: {execution.status.value}",
        f"  Wait name: {wait.name}",
        f"  Wait ID: {wait.wait_id}",
        f"  Question: {wait.question or 'not set'}",
    ]
    if wait.entered_waiting_at is not None:
        lines.append(f"  Waiting since: {format_time(wait.entered_waiting_at)}")
    if wait.schema is None:
        lines.append("  JSON schema: not provided")
    else:
        lines.append("  JSON schema:")
        pretty = json.dumps(wait.schema, indent=2, sort_keys=True, ensure_ascii=False)
        lines += [f"    {line}" for line in pretty.splitlines()]
    lines.append(_RULE)
    return lines


def _action() -> str:
    while True:
        answer = _ask("Action [c=continue, a=abort, s=skip, q=quit]: ")
        if answer is None:
            return "quit"
        action = _ACTIONS.get(answer.strip().lower())
        if action is not None:
            return action


def _value() -> Any:
    while True:
        text = _ask("JSON value for result (empty for null): ")
        if text is None or not text.strip():
            return None
        try:
            return parse_json(text, "")
        except ValueError as exc:
            echo_lines([f"{exc} Try again."])


def _candidates(
    client: KitaruClient, exec_id: str | None, wait: str | None
) -> list[tuple[Execution, PendingWait]]:
    if exec_id is not None:
        executions = [client.executions.get(exec_id)]
    else:
        executions = client.executions.list(status="waiting")
    found = [
        (execution, pending)
        for execution in executions
        for pending in client.executions.pending_waits(execution.exec_id)
    ]
    if wait is not None:
        found = [(e, w) for e, w in found if wait in (w.name, w.wait_id)]
    return found


def sweep(client: KitaruClient, exec_id: str | None, wait: str | None = None) -> int:
    """Offer every pending wait (of ``exec_id``, or of every waiting execution); return the code.

    Each wait can be continued (with a JSON value), aborted, skipped, or the sweep quit. A
    failure is reported and the sweep goes on; the code is 1 if any failed, else 0.
    """
    candidates = _candidates(client, exec_id, wait)
    if not candidates:
        where = f"execution '{exec_id}'" if exec_id is not None else "any execution"
        echo_lines([f"No pending waits found for {where}."])
        return 0
    failures = 0
    total = len(candidates)
    for index, (execution, pending) in enumerate(candidates, 1):
        echo_lines(_block(index, total, execution, pending))
        action = _action()
        if action == "quit":
            break
        if action == "skip":
            continue
        try:
            if action == "continue":
                value = _value()
                result = client.executions.input(
                    execution.exec_id, wait=pending.wait_id, value=value
                )
                message = f"Resolved wait input for execution: {result.exec_id}"
            else:
                result = client.executions.abort_wait(execution.exec_id, wait=pending.wait_id)
                message = f"Aborted wait for execution: {result.exec_id}"
        except Exception as exc:
            verb = "resolving" if action == "continue" else "aborting"
            echo_lines([f"Error {verb} wait '{pending.name}': {exc}"], err=True)
            failures += 1
            continue
        echo_lines([message, f"  Status: {result.status.value}"])
    return 1 if failures else 0
