"""Failure records: what went wrong, where it came from, and the typed error to raise."""

from __future__ import annotations

import traceback as tb
from typing import Any

from kitaru.errors import (
    FailureOrigin,
    KitaruDivergenceError,
    KitaruError,
    KitaruExecutionError,
    KitaruUserCodeError,
)

__all__ = ["classify", "execution_error", "failure_from_exception", "retry_hint"]

_HINTS = (
    (FailureOrigin.DIVERGENCE, ("diverg", "durable call sequence", "replay mismatch")),
    (
        FailureOrigin.RUNTIME,
        ("serialize", "serialization", "deserialize", "materializ", "hydrate", "reconstruct"),
    ),
    (
        FailureOrigin.BACKEND,
        (
            "backend communication",
            "connection refused",
            "transport error",
            "failed to fetch",
            "api unavailable",
        ),
    ),
)


def classify(text: str, default: FailureOrigin) -> FailureOrigin:
    """Classify a failure by upstream's hint words, first hit wins."""
    lowered = text.lower()
    for origin, hints in _HINTS:
        if any(hint in lowered for hint in hints):
            return origin
    return default


def failure_from_exception(exc: BaseException, *, origin: FailureOrigin | None = None) -> dict:
    """A failure record for ``exc`` (message, exception type, traceback, origin)."""
    text = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
    message = str(exc) or type(exc).__name__
    if origin is None:
        default = FailureOrigin.USER_CODE
        if isinstance(exc, KitaruDivergenceError):
            default = FailureOrigin.DIVERGENCE
        elif isinstance(exc, KitaruError):
            default = FailureOrigin.RUNTIME
        origin = classify(f"{message}\n{type(exc).__name__}", default)
    kind = type(exc)
    qual = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return {"message": message, "exception_type": qual, "traceback": text, "origin": str(origin)}


def retry_hint(exec_id: str) -> str:
    """The human hint for retrying a failed execution."""
    return f"To retry this failed execution, run:\n\n  kitaru executions retry {exec_id}"


def execution_error(exec_id: str, state: dict[str, Any]) -> KitaruExecutionError:
    """The typed error ``FlowHandle.wait()`` raises for a failed or cancelled execution."""
    status = state["status"]
    failure = state.get("failure") or {}
    parts = [f"Execution {exec_id} finished with status '{status}'."]
    if state.get("status_reason"):
        parts.append(str(state["status_reason"]))
    if failure.get("message") and failure.get("message") != state.get("status_reason"):
        parts.append(str(failure["message"]))
    message = " ".join(parts)
    try:
        origin = FailureOrigin(failure.get("origin") or "unknown")
    except ValueError:
        origin = FailureOrigin.UNKNOWN
    if status != "failed":
        return KitaruExecutionError(message, exec_id=exec_id, status=status, failure_origin=None)
    message = f"{message}\n\n{retry_hint(exec_id)}"
    cls = {
        FailureOrigin.USER_CODE: KitaruUserCodeError,
        FailureOrigin.DIVERGENCE: KitaruDivergenceError,
    }.get(origin, KitaruExecutionError)
    return cls(message, exec_id=exec_id, status=status, failure_origin=origin)
