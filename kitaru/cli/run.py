"""``kitaru run``: start a flow from a file or module."""

from __future__ import annotations

import contextlib
import sys

import click

from kitaru.cli._client import get_client
from kitaru.cli._follow import exit_with
from kitaru.cli._params import parse_json_object
from kitaru.cli.output import Success, emit, output_format, output_option

__all__ = ["run"]


@click.command("run")
@click.argument("target", metavar="FILE_OR_MODULE:FLOW")
@click.option("--args", "args", metavar="JSON", help="Flow inputs, as a JSON object.")
@click.option(
    "--detach", is_flag=True, help="Start a runner process and return at once (no output)."
)
@output_option
def run(target: str, args: str | None, detach: bool) -> None:
    """Run a flow: `path/to/file.py:flow_name` or `package.module:flow_name`.

    In the foreground the flow runs in this process (its prints appear) until it completes,
    fails or pauses at a wait; the exit code is 0 when it completed or waits, 1 when it failed
    or was cancelled. With --detach it runs in a runner process and this returns at once.

    Example: kitaru run agent.py:research --args '{"topic": "AI"}'
    """
    flow_args = parse_json_object(args, "--args", '{"topic": "AI"}')
    client = get_client()
    quiet = output_format() == "json" and not detach
    # In JSON mode stdout carries one document: the flow's own prints go to stderr.
    redirect = contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext()
    with redirect:
        execution = client.executions.run(target, args=flow_args, detach=detach)
    details = [f"Status: {execution.status.value}"]
    if execution.failure is not None:
        details.append(f"Failure: {execution.failure.message}")
    emit(Success(f"Started execution: {execution.exec_id}", details), item=execution.to_dict())
    exit_with(1 if execution.status.value in ("failed", "cancelled") else 0)
