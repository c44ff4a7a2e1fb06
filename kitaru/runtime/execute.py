"""Run a flow body for an execution and record how it ended.

Used by ``flow.run()`` in the calling process and by the detached runner; the caller holds the
runner lock for the whole call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from kitaru.errors import FailureOrigin
from kitaru.runtime.capture import capture_installed
from kitaru.runtime.context import flow_run_var
from kitaru.runtime.engine import CancelledSignal, FlowRun
from kitaru.runtime.failure import failure_from_exception
from kitaru.runtime.wait import WaitSuspended
from kitaru.store import Store, now_iso

__all__ = ["execute_flow", "first_state", "open_store"]

_INTERRUPTED = {
    "message": "interrupted",
    "exception_type": "KeyboardInterrupt",
    "traceback": None,
    "origin": str(FailureOrigin.RUNTIME),
}


def open_store() -> Store:
    """The store flows run in, created (and announced once) where none exists yet."""
    store, created = Store.open_or_create()
    if created:
        print(f"Created Kitaru project store at {store.root}", file=sys.stderr)
    store.upgrade()  # an older store is brought to the current format before any write
    return store


def first_state(
    store: Store, flow_name: str, stack: str, original_exec_id: str | None = None
) -> dict[str, Any]:
    """The first ``state.json`` of a new execution, created running by this process."""
    now = now_iso()
    return {
        "status": "running",
        "flow_name": flow_name,
        "stack": stack,
        "created_at": now,
        "started_at": now,
        "ended_at": None,
        "status_reason": None,
        "failure": None,
        "result": None,
        "metadata": {},
        "cancel_requested": False,
        "runner": store.runner_info(),
        "original_exec_id": original_exec_id,
    }


def _body(
    run: FlowRun, func: Callable[..., Any], args: tuple, kwargs: dict
) -> tuple[Any, BaseException | None]:
    token = flow_run_var.set(run)
    try:
        try:
            result: Any = func(*args, **kwargs)
            error: BaseException | None = None
        except BaseException as exc:  # noqa: BLE001 - every ending is recorded below
            result, error = None, exc
        pending = run.settle()
    finally:
        flow_run_var.reset(token)
    # A failed submitted call outranks the stop it caused in the body (raised as a cancel).
    body_stopped = error is None or isinstance(error, CancelledSignal)
    if pending is not None and body_stopped and not isinstance(error, type(pending)):
        error = pending
    return result, error


def _ending(store: Store, result: Any, error: BaseException | None) -> dict[str, Any]:
    if error is None:
        try:
            return {"status": "completed", "result": store.encode(result)}
        except Exception as exc:  # the result cannot be stored
            error = exc
    if isinstance(error, WaitSuspended):
        return {"status": "waiting"}
    if isinstance(error, CancelledSignal):
        return {"status": "cancelled", "status_reason": "cancelled by request"}
    if isinstance(error, KeyboardInterrupt):
        return {"status": "failed", "status_reason": "interrupted", "failure": dict(_INTERRUPTED)}
    failure = failure_from_exception(error)
    return {"status": "failed", "status_reason": failure["message"], "failure": failure}


def execute_flow(
    store: Store,
    exec_id: str,
    func: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    settings: dict[str, Any],
    journal: list[dict[str, Any]] | None = None,
    *,
    replay: dict[str, Any] | None = None,
) -> str:
    """Run ``func`` as execution ``exec_id`` and record its final status; return it.

    A ``KeyboardInterrupt`` is recorded as ``failed`` ("interrupted") and then re-raised.
    ``replay`` is the ``replay`` section of a replay execution's spec (boundary, overrides).
    """
    run = FlowRun(store, exec_id, settings, journal, replay=replay)
    with capture_installed:
        try:
            result, error = _body(run, func, args, kwargs)
        finally:
            run.capture.flush()
            run.close()
    if run.diverged is not None and not isinstance(error, KeyboardInterrupt):
        error = run.diverged
    ending = _ending(store, result, error)

    def finish(state: dict[str, Any]) -> dict[str, Any]:
        if state["status"] not in ("running", "waiting"):
            # Already ended from outside (a wait aborted, a waiting run cancelled).
            return {**state, "runner": None}
        state.update(ending, runner=None)
        if ending["status"] != "waiting":
            state["ended_at"] = now_iso()
        return state

    final = store.update_state(exec_id, finish)
    if isinstance(error, KeyboardInterrupt | SystemExit):
        raise error
    return final["status"]
