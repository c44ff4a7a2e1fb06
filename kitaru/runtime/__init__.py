"""Executing flows: decorators, context, journal reuse and recording."""

from __future__ import annotations

from kitaru.runtime.context import current_run

__all__ = ["_get_current_execution_id"]


def _get_current_execution_id() -> str | None:
    """The id of the execution the calling code runs in, or None outside a flow."""
    run = current_run()
    return run.exec_id if run is not None else None
