"""``kitaru executions``: list, inspect, follow, answer and drive executions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kitaru.cli._client import get_client
from kitaru.cli._follow import entry_line, exit_with, grouped_lines
from kitaru.cli._follow import follow as follow_logs
from kitaru.cli._params import SinceType, exec_id_argument, parse_json, parse_json_object
from kitaru.cli.output import (
    Lines,
    Snapshot,
    Success,
    Table,
    emit,
    format_time,
    output_format,
    output_option,
)

if TYPE_CHECKING:
    from kitaru.models import Execution

__all__ = ["executions"]

F = TypeVar("F", bound=Callable[..., Any])

_CHECKPOINTS_SHOWN = 4


def _usage_error(message: str) -> Exception:
    from kitaru.errors import KitaruUsageError

    return KitaruUsageError(message)


@click.group()
def executions() -> None:
    """List, inspect, follow, answer and drive executions.

    Example: kitaru executions list --status waiting
    """


# -- list / get ---------------------------------------------------------------------------------


def _wait_name(execution: Execution) -> str:
    wait = execution.pending_wait
    return wait.name if wait is not None else "-"


def _duration(execution: Execution) -> str:
    if execution.started_at is None or execution.ended_at is None:
        return "-"
    seconds = max(0.0, (execution.ended_at - execution.started_at).total_seconds())
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


@executions.command("list")
@click.option("--status", help="Only executions with this status (running, waiting, ...).")
@click.option("--flow", help="Only executions of this flow.")
@click.option(
    "--since",
    type=SinceType(),
    help="Only executions started at or after this time: ISO date/time or a duration ago "
    "(30m, 2h, 7d).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@output_option
def list_executions(
    status: str | None, flow: str | None, since: datetime | None, limit: int | None
) -> None:
    """List executions, newest first.

    Example: kitaru executions list --flow research --since 2h --limit 10
    """
    found = get_client().executions.list(status=status, flow=flow, limit=limit, since=since)
    rows = [
        [
            e.exec_id,
            e.flow_name or "unknown flow",
            e.status.value,
            format_time(e.started_at),
            _duration(e),
            _wait_name(e),
            e.original_exec_id or "-",
        ]
        for e in found
    ]
    headers = ["ID", "Flow", "Status", "Started", "Duration", "Pending wait", "Replay of"]
    emit(Table("Kitaru executions", headers, rows), items=[e.to_summary_dict() for e in found])


def _checkpoints(execution: Execution) -> str:
    calls = execution.checkpoints
    if not calls:
        return "none"
    shown = ", ".join(f"{c.name} ({c.status})" for c in calls[:_CHECKPOINTS_SHOWN])
    more = len(calls) - _CHECKPOINTS_SHOWN
    return f"{shown}, ... (+{more} more)" if more > 0 else shown


@executions.command("get")
@exec_id_argument()
@output_option
def get_execution(exec_id: str) -> None:
    """Show one execution; a unique id prefix is enough.

    Example: kitaru executions get kr-a8f3c2
    """
    e = get_client().executions.get(exec_id)
    wait = e.pending_wait
    rows: list[tuple[str, Any]] = [
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
    if e.cancel_requested:
        rows.append(("Cancel requested", "yes"))
    next_step = _next_step(e)
    if next_step:
        rows.append(("Next", next_step))
    emit(Snapshot("Kitaru execution", rows), item=e.to_dict())


def _next_step(e: Execution) -> str | None:
    """The command that moves a stuck execution on, if there is one."""
    if e.status.value == "failed":
        return f"kitaru executions retry {e.exec_id}"
    if e.status.value == "waiting" and e.pending_wait:
        return f"kitaru executions input {e.exec_id} --value <json>"
    if e.status.value == "waiting" and not e.runner_alive:
        return f"kitaru executions resume {e.exec_id}"
    return None


# -- logs ---------------------------------------------------------------------------------------


@executions.command("logs")
@exec_id_argument()
@click.option(
    "--checkpoint",
    metavar="NAME",
    help="Only lines of this checkpoint (a name: all its calls; or one invocation id).",
)
@click.option(
    "--source",
    type=click.Choice(["step", "runner"], case_sensitive=False),
    help="Only step lines (inside checkpoints) or runner lines (the flow body). Default: both.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many lines.")
@click.option("--follow", is_flag=True, help="Keep printing new lines until the execution ends.")
@click.option(
    "--interval",
    type=float,
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between polls with --follow.",
)
@click.option("--grouped", is_flag=True, help="Group lines by checkpoint, with a header each.")
@click.option(
    "-v", "--verbose", "verbosity", count=True, help="-v adds time and level; -vv the checkpoint."
)
@output_option
def logs(
    exec_id: str,
    checkpoint: str | None,
    source: str | None,
    limit: int | None,
    follow: bool,
    interval: float,
    grouped: bool,
    verbosity: int,
) -> None:
    """Show the captured log lines of an execution (step and runner lines together).

    With --follow, new lines are printed as they arrive until the execution completes
    (exit 0), fails or is cancelled (exit 1), or stops at a wait (exit 0; answer it, resume,
    and follow again). In JSON mode --follow prints JSON Lines events.

    Example: kitaru executions logs kr-a8f3c2 --checkpoint write_draft -v
    """
    json_mode = output_format() == "json"
    if grouped and json_mode:
        raise _usage_error("`--grouped` cannot be combined with `--output json`.")
    if checkpoint is not None and source is not None and source.lower() == "runner":
        raise _usage_error("`--checkpoint` cannot be combined with `--source runner`.")
    if not interval > 0:
        raise _usage_error("`--interval` must be > 0.")
    verbosity = min(verbosity, 2)
    client = get_client()
    source = source.lower() if source else None
    if follow:
        resolved = client.executions.get(exec_id).exec_id
        code = follow_logs(
            client,
            resolved,
            checkpoint=checkpoint,
            source=source,
            limit=limit,
            interval=interval,
            verbosity=verbosity,
            grouped=grouped,
        )
        exit_with(code)
        return
    entries = client.executions.logs(exec_id, checkpoint=checkpoint, source=source, limit=limit)
    if not entries:
        view = Lines(
            [
                f"No log entries found for execution {exec_id}.",
                "The execution may still be starting, or step logging may be disabled.",
            ]
        )
    elif grouped:
        view = Lines(grouped_lines(entries, verbosity))
    else:
        view = Lines([entry_line(e, verbosity) for e in entries])
    emit(view, items=[e.to_dict() for e in entries])


# -- input --------------------------------------------------------------------------------------


def _select_wait(client: Any, exec_id: str) -> tuple[str, str]:
    """The resolved id and the single pending wait's id (errors for none or several)."""
    from kitaru.errors import KitaruStateError

    resolved = client.executions.get(exec_id).exec_id
    waits = client.executions.pending_waits(resolved)
    if not waits:
        raise KitaruStateError(f"Execution '{resolved}' has no pending waits to resolve.")
    if len(waits) > 1:
        names = ", ".join(w.name for w in waits)
        raise KitaruStateError(
            f"Execution '{resolved}' has multiple pending waits ({names}). Use `--wait NAME` "
            "to choose one, or `kitaru executions input --interactive` to resolve them."
        )
    return resolved, waits[0].wait_id


@executions.command("input")
@exec_id_argument(required=False)
@click.option(
    "--wait", "wait", metavar="NAME", help="The wait to answer (name or wait id), if several."
)
@click.option("--value", metavar="JSON", help="The answer, as JSON: true, 42, '\"text\"', ...")
@click.option("--abort", is_flag=True, help="Abort the wait instead (the execution is cancelled).")
@click.option(
    "-i", "--interactive", is_flag=True, help="Answer pending waits one by one at a prompt."
)
@output_option
@click.pass_context
def input_(
    ctx: click.Context,
    exec_id: str | None,
    wait: str | None,
    value: str | None,
    abort: bool,
    interactive: bool,
) -> None:
    """Answer (or abort) a pending wait of an execution.

    Without --wait the execution's single pending wait is chosen. --interactive sweeps the
    pending waits of EXEC_ID, or of every waiting execution when EXEC_ID is left out. After
    answering a wait whose runner has exited, run `kitaru executions resume EXEC_ID`.

    Example: kitaru executions input kr-a8f3c2 --value true
    """
    if interactive:
        if value is not None:
            raise _usage_error("`--value` cannot be used with `--interactive`.")
        if abort:
            raise _usage_error("`--abort` cannot be used with `--interactive`.")
        if output_format() == "json":
            raise _usage_error("`--output json` cannot be used with `--interactive`.")
        from kitaru.cli._interactive import is_terminal, sweep

        if not is_terminal():
            raise _usage_error("Interactive mode requires a terminal (TTY) for input and output.")
        try:
            code = sweep(get_client(), exec_id, wait)
        except KeyboardInterrupt:
            click.echo("", err=False)
            click.echo("Interrupted.", err=True)
            code = 1
        exit_with(code)
        return
    if exec_id is None:
        raise _usage_error(
            "Execution ID is required in non-interactive mode. Use `--interactive` to sweep "
            "all waiting executions."
        )
    if abort and value is not None:
        raise _usage_error("`--value` cannot be used with `--abort`.")
    if not abort and value is None:
        raise _usage_error("`--value` is required (or use `--abort` / `--interactive`).")
    parsed = parse_json(value, "--value") if value is not None else None
    client = get_client()
    if wait is None:
        exec_id, wait = _select_wait(client, exec_id)
    if abort:
        result = client.executions.abort_wait(exec_id, wait=wait)
        message = f"Aborted wait for execution: {result.exec_id}"
    else:
        result = client.executions.input(exec_id, wait=wait, value=parsed)
        message = f"Resolved wait input for execution: {result.exec_id}"
    emit(Success(message, [f"Status: {result.status.value}"]), item=result.to_dict())


# -- lifecycle ----------------------------------------------------------------------------------


def _follow_option(func: F) -> F:
    return click.option(
        "--follow",
        is_flag=True,
        help="Then stream the execution's logs until it settles (as `logs --follow`).",
    )(func)


def _report(verb: str, execution: Execution, stream: bool) -> None:
    """Print ``<Verb> execution: <id>`` (or the JSON item), then follow its logs if asked."""
    emit(
        Success(f"{verb} execution: {execution.exec_id}", [f"Status: {execution.status.value}"]),
        item=execution.to_dict(),
    )
    if stream:
        # Only a completed execution makes a lifecycle --follow succeed.
        exit_with(follow_logs(get_client(), execution.exec_id, waiting_code=1))


@executions.command("resume")
@exec_id_argument()
@_follow_option
@output_option
def resume(exec_id: str, follow: bool) -> None:
    """Continue a waiting execution whose runner has exited, once its waits have input.

    Example: kitaru executions resume kr-a8f3c2 --follow
    """
    _report("Resumed", get_client().executions.resume(exec_id), follow)


@executions.command("retry")
@exec_id_argument()
@_follow_option
@output_option
def retry(exec_id: str, follow: bool) -> None:
    """Re-run a failed execution in place: finished checkpoints are reused.

    Example: kitaru executions retry kr-a8f3c2
    """
    _report("Retried", get_client().executions.retry(exec_id), follow)


@executions.command("cancel")
@exec_id_argument()
@output_option
def cancel(exec_id: str) -> None:
    """Cancel a running or waiting execution.

    A running execution stops at its next checkpoint boundary; this waits up to 10 s for it.

    Example: kitaru executions cancel kr-a8f3c2
    """
    _report("Cancelled", get_client().executions.cancel(exec_id), False)


_RESERVED_INPUTS = ("from_", "overrides")


@executions.command("replay")
@exec_id_argument()
@click.option(
    "--from",
    "from_",
    required=True,
    metavar="SEL",
    help="The boundary: a checkpoint name, invocation id or call id; it and later calls re-run.",
)
@click.option("--args", "args", metavar="JSON", help="Changed flow inputs, as a JSON object.")
@click.option(
    "--overrides",
    metavar="JSON",
    help='Checkpoint outputs to use instead of running, e.g. \'{"checkpoint.research": "x"}\'.',
)
@_follow_option
@output_option
def replay(exec_id: str, from_: str, args: str | None, overrides: str | None, follow: bool) -> None:
    """Replay an execution into a new one from a checkpoint boundary.

    Example: kitaru executions replay kr-a8f3c2 --from write_draft --args '{"topic": "AI"}'
    """
    flow_inputs = parse_json_object(args, "--args", '{"topic": "AI"}') or {}
    edits = parse_json_object(overrides, "--overrides", '{"checkpoint.research": "notes"}')
    reserved = [name for name in _RESERVED_INPUTS if name in flow_inputs]
    if reserved:
        raise _usage_error(
            f"Flow inputs named {', '.join(reserved)} cannot be passed with `--args` "
            "(the replay call reserves these names)."
        )
    execution = get_client().executions.replay(
        exec_id, from_=from_, overrides=edits or None, **flow_inputs
    )
    _report("Replayed", execution, follow)
