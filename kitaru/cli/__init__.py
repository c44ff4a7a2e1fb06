"""The ``kitaru`` command line: the root group and the one place errors become exit codes.

Every command parses its options, makes one ``KitaruClient`` call and renders the result with
:mod:`kitaru.cli.output`. Exit codes: 0 success, 1 a handled failure, 2 a usage error found by
Click's parser.
"""

from __future__ import annotations

import os
from typing import Any

import click

from kitaru import __version__
from kitaru.cli import output

__all__ = ["KitaruGroup", "cli", "main"]

_EXPECTED = (LookupError, ValueError)


class KitaruGroup(click.Group):
    """The root group: turns every exception a command raises into one error report."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; report failures as ``Error: ...`` (or JSON) and exit 1."""
        from kitaru.errors import KitaruError

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if output.debug_enabled():
                output.print_traceback()
            expected = isinstance(exc, (KitaruError, *_EXPECTED))
            output.emit_error(ctx, exc, expected=expected)
            raise click.exceptions.Exit(1) from None


def _set_project(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        os.environ["KITARU_PROJECT_DIR"] = value
    return value


@click.group(
    cls=KitaruGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--project",
    metavar="PATH",
    expose_value=False,
    callback=_set_project,
    help="Use the project (or store folder) at PATH instead of searching from here.",
)
@click.version_option(
    __version__, "-V", "--version", prog_name="kitaru", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Kitaru: durable execution for Python agents, kept in a .kitaru/ folder.

    Example: kitaru executions list --status failed
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _register() -> None:
    from kitaru.cli import artifacts, executions, project, run, stack

    commands = (*project.COMMANDS, run.run, stack.stack, executions.executions)
    for command in (*commands, artifacts.artifacts):
        cli.add_command(command)


_register()


def main() -> None:
    """Run the ``kitaru`` console script."""
    cli.main(prog_name="kitaru")
