"""Context variables: which execution and which checkpoint call the current code runs in."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kitaru.runtime.engine import CallScope, FlowRun

__all__ = ["call_scope_var", "current_call", "current_run", "flow_run_var", "runner_importing"]

flow_run_var: ContextVar[FlowRun | None] = ContextVar("kitaru_flow_run", default=None)
call_scope_var: ContextVar[CallScope | None] = ContextVar("kitaru_call_scope", default=None)
# Set while the detached runner imports a flow's module or script.
runner_importing: ContextVar[str | None] = ContextVar("kitaru_runner_importing", default=None)


def current_run() -> FlowRun | None:
    """The flow run the calling code belongs to, if any."""
    return flow_run_var.get()


def current_call() -> CallScope | None:
    """The checkpoint call the calling code runs inside, if any."""
    return call_scope_var.get()
