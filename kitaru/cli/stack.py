"""``kitaru stack``: the stacks this tool knows (only the built-in ``local`` one for now)."""

from __future__ import annotations

import click

from kitaru.cli._client import get_client
from kitaru.cli.output import Snapshot, emit, output_option

__all__ = ["stack"]


@click.group()
def stack() -> None:
    """Inspect stacks (where flows run).

    Example: kitaru stack list
    """


@stack.command("list")
@output_option
def list_stacks() -> None:
    """List the known stacks and mark the active one.

    Example: kitaru stack list -o json
    """
    stacks = get_client().project.stacks()
    rows = [(s["name"], f"{s['id']} (active)" if s.get("is_active") else s["id"]) for s in stacks]
    emit(Snapshot("Kitaru stacks", rows or [("Stacks", "none found")]), items=stacks)
