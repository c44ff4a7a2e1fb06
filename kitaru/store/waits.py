"""Wait records: opening, answering, aborting, and checking answers before anything is written.

Answers arrive only through the store, so the client, the CLI, the MCP server and the runner's
own terminal prompt all resolve a wait the same way: validate (size, depth, JSON Schema), then
a compare-and-swap ``pending -> resolved`` under the execution lock. Exactly one answer wins.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson

from kitaru.errors import KitaruStateError, KitaruUsageError, KitaruWaitValidationError
from kitaru.store.records import read_json_record

if TYPE_CHECKING:
    from kitaru.store.store import Store

__all__ = [
    "MAX_DEPTH",
    "MAX_VALUE_BYTES",
    "abort_wait",
    "check_input",
    "check_value",
    "open_wait",
    "read_wait",
    "reopen_wait",
    "resolve_wait",
    "validate_answer",
]

MAX_VALUE_BYTES = 1024 * 1024
MAX_DEPTH = 64


def _depth(value: Any, limit: int, *, finite: bool = True) -> int:
    """Nesting depth of ``value``, counting no further than ``limit + 1``.

    With ``finite``, a NaN or infinity anywhere is refused (JSON has no value for them).
    """
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, level = stack.pop()
        if finite and isinstance(item, float) and not math.isfinite(item):
            raise KitaruUsageError(f"JSON has no value for {item!r}; send a finite number.")
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, level)
            if level > limit:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def check_value(value: Any, what: str = "value") -> bytes:
    """Refuse values that are not JSON, over 1 MiB encoded, or nested deeper than 64."""
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise KitaruUsageError(f"The {what} is nested deeper than {MAX_DEPTH} levels.")
    try:
        raw = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise KitaruUsageError(f"The {what} is not JSON-serializable: {exc}") from None
    if len(raw) > MAX_VALUE_BYTES:
        raise KitaruUsageError(
            f"The {what} is {len(raw)} bytes encoded; the limit is {MAX_VALUE_BYTES} (1 MiB)."
        )
    return raw


def check_input(value: Any, what: str) -> None:
    """Cap a flow input or override: nesting depth 64 always, 1 MiB when it is JSON.

    Values from outside (CLI, MCP) are JSON; Python callers may pass any object.
    """
    if _depth(value, MAX_DEPTH, finite=False) > MAX_DEPTH:
        raise KitaruUsageError(f"The {what} is nested deeper than {MAX_DEPTH} levels.")
    try:
        size = len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return
    if size > MAX_VALUE_BYTES:
        raise KitaruUsageError(
            f"The {what} is {size} bytes encoded; the limit is {MAX_VALUE_BYTES} (1 MiB)."
        )


def validate_answer(wait: dict[str, Any], value: Any, exec_id: str) -> None:
    """Check an answer against the wait's JSON Schema (``KitaruWaitValidationError``)."""
    check_value(value, "wait input")
    schema = wait.get("schema")
    if schema is None:
        return
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    errors = sorted(validator_cls(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        pointer = "/" + "/".join(str(p) for p in error.absolute_path)
        shown = error.message if len(error.message) < 300 else error.message[:297] + "..."
        raise KitaruWaitValidationError(
            f"Wait input failed validation for '{wait['name']}' on execution '{exec_id}': "
            f"{shown} (at {pointer})"
        )


def _wait_path(store: Store, exec_id: str, seq: int) -> Any:
    base = store.exec_dir(exec_id) / "waits"
    prefix = f"{seq:04d}-"
    try:
        names = [n for n in base.iterdir() if n.name.startswith(prefix) and n.suffix == ".json"]
    except FileNotFoundError:
        return None
    return names[0] if names else None


def read_wait(store: Store, exec_id: str, seq: int) -> dict[str, Any] | None:
    """The wait record at journal position ``seq``, or None."""
    path = _wait_path(store, exec_id, seq)
    if path is None:
        return None
    try:
        return read_json_record(path, "wait")
    except FileNotFoundError:
        return None


def open_wait(store: Store, exec_id: str, record: dict[str, Any] | None) -> bool:
    """Record a new pending wait (if given) and set the execution ``waiting``, under one lock.

    Called with None when a runner reaches a wait that is already pending in the journal.
    Returns False, having written nothing, when the execution has a cancel request: decided
    under the lock a cancel takes, so a wait never opens on an execution being cancelled.
    """
    with store.exec_lock(exec_id):
        current = store.read_state(exec_id)
        if current.get("cancel_requested") or current["status"] == "cancelled":
            return False
        if record is not None:
            store.write_wait(exec_id, record)
        _set_waiting(store, exec_id, current)
    return True


def _set_waiting(store: Store, exec_id: str, current: dict[str, Any] | None = None) -> None:
    current = current if current is not None else store.read_state(exec_id)
    if current["status"] == "running":
        store.swap_state(exec_id, current, {**current, "status": "waiting"})


def _pending_or_raise(store: Store, exec_id: str, seq: int) -> dict[str, Any]:
    wait = read_wait(store, exec_id, seq)
    if wait is None:
        raise KitaruStateError(f"Execution '{exec_id}' has no wait at position {seq}.")
    if wait["status"] != "pending":
        raise KitaruStateError(
            f"Wait '{wait['name']}' of execution '{exec_id}' is already {wait['status']}."
        )
    return wait


def resolve_wait(store: Store, exec_id: str, seq: int, value: Any, *, now: str) -> dict[str, Any]:
    """Answer a pending wait (validated first); a lost race is a ``KitaruStateError``."""
    wait = read_wait(store, exec_id, seq)
    if wait is not None:
        validate_answer(wait, value, exec_id)
    with store.exec_lock(exec_id):
        wait = _pending_or_raise(store, exec_id, seq)
        resolved = {**wait, "status": "resolved", "value": value, "resolved_at": now, "error": None}
        store.write_wait(exec_id, resolved)
        return resolved


def abort_wait(store: Store, exec_id: str, seq: int, *, now: str) -> None:
    """Abort a pending wait; the execution ends ``cancelled``."""
    with store.exec_lock(exec_id):
        wait = _pending_or_raise(store, exec_id, seq)
        store.write_wait(exec_id, {**wait, "status": "aborted", "resolved_at": now})
        current = store.read_state(exec_id)
        if current["status"] in ("running", "waiting"):
            store.swap_state(
                exec_id,
                current,
                {
                    **current,
                    "status": "cancelled",
                    "status_reason": f"wait '{wait['name']}' aborted",
                    "cancel_requested": True,
                    "ended_at": now,
                },
            )


def reopen_wait(store: Store, exec_id: str, seq: int, error: str) -> None:
    """Put a resolved wait back to pending after the runner could not convert its answer."""
    with store.exec_lock(exec_id):
        wait = read_wait(store, exec_id, seq)
        if wait is not None and wait["status"] == "resolved":
            store.write_wait(exec_id, {**wait, "status": "pending", "value": None, "error": error})
            _set_waiting(store, exec_id)
