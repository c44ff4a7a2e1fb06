"""``kitaru.wait()``: pause a flow for a typed answer from a person or a program.

The runner records a pending wait, sets the execution ``waiting`` (keeping its runner lock) and
polls the store for an answer until ``timeout``. An answer in time continues the same process;
at the deadline it re-checks under the execution lock, then the body unwinds, the runner lock is
released and ``.run()`` returns. A later answer needs ``resume``, which re-runs the body and
returns the recorded answer at this call.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from typing import Any

import orjson

from kitaru.errors import KitaruContextError, KitaruUsageError
from kitaru.runtime.context import current_call, current_run
from kitaru.runtime.engine import CancelledSignal, FlowRun
from kitaru.store import now_iso
from kitaru.store import waits as store_waits
from kitaru.store.layout import validate_name

__all__ = ["WaitSuspended", "wait"]

DEFAULT_TIMEOUT = 600
_POLL = 0.05


class WaitSuspended(BaseException):
    """Unwinds the flow body when a wait times out; the execution stays ``waiting``."""

    def __init__(self, wait_name: str) -> None:
        super().__init__(wait_name)
        self.wait_name = wait_name


class _Schema:
    """The wait's expected type: its JSON Schema and how to convert an answer into it."""

    def __init__(self, schema: Any) -> None:
        self.raw = schema
        self.adapter = None
        if schema is None:
            self.json_schema = None
        elif isinstance(schema, dict):
            self.json_schema = schema
        else:
            from pydantic import TypeAdapter

            try:
                self.adapter = TypeAdapter(schema)
                self.json_schema = self.adapter.json_schema()
            except Exception as exc:
                raise KitaruUsageError(f"Unsupported wait schema {schema!r}: {exc}") from exc

    def convert(self, value: Any) -> Any:
        if self.raw is None:
            return None
        return self.adapter.validate_python(value) if self.adapter else value

    def accepts_strings(self) -> bool:
        kind = (self.json_schema or {}).get("type")
        return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _check_context() -> FlowRun:
    run = current_run()
    if run is None:
        raise KitaruContextError("wait() can only run inside a @flow.")
    if current_call() is not None:
        raise KitaruContextError(
            "wait() cannot be called inside a @checkpoint. Call wait() in the flow body instead."
        )
    if threading.get_ident() != run.thread_id:
        raise KitaruContextError("wait() must be called from the flow's own thread.")
    return run


def wait(
    *,
    schema: Any = None,
    name: str | None = None,
    question: str | None = None,
    timeout: int | float | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Pause the flow until the wait is answered; return the answer converted to ``schema``."""
    run = _check_context()
    name = validate_name("wait name", name if name is not None else "wait")
    if metadata is not None and not isinstance(metadata, dict):
        raise KitaruUsageError("Wait `metadata` must be a dict.")
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    if timeout < 0:
        raise KitaruUsageError("Wait `timeout` must be >= 0.")
    spec = _Schema(schema)
    seq, inv = run.allocate("wait", name, None)
    record = run.recorded(seq, "wait", name, inv)
    if record is None:
        run.check_cancel()
        record = _open(run, seq, name, inv, question, spec, metadata or {}, timeout)
    elif record["status"] == "pending":
        _show_waiting(run, None)  # still unanswered
    return _await(run, record, spec, time.monotonic() + timeout)


def _show_waiting(run: FlowRun, record: dict[str, Any] | None) -> None:
    """Record the wait (if new) and set the execution waiting, or stop if it is being cancelled."""
    if not store_waits.open_wait(run.store, run.exec_id, record):
        run.stopping = True
        raise CancelledSignal()


def _open(
    run: FlowRun,
    seq: int,
    name: str,
    inv: str,
    question: str | None,
    spec: _Schema,
    metadata: dict[str, Any],
    timeout: float,
) -> dict[str, Any]:
    record = {
        "seq": seq,
        "wait_id": f"{run.exec_id}.w{seq}",
        "name": name,
        "invocation_id": inv,
        "question": question,
        "schema": spec.json_schema,
        "metadata": orjson.loads(orjson.dumps(metadata, default=str)),
        "status": "pending",
        "value": None,
        "created_at": now_iso(),
        "resolved_at": None,
        "error": None,
        "timeout": timeout,
    }
    _show_waiting(run, record)
    return record


def _await(run: FlowRun, record: dict[str, Any], spec: _Schema, deadline: float) -> Any:
    prompt = _Prompt(run, record, spec) if _interactive() else None
    seq = record["seq"]
    while True:
        current = store_waits.read_wait(run.store, run.exec_id, seq) or record
        if current["status"] == "aborted" or run.cancelled():
            raise CancelledSignal()
        if current["status"] == "resolved":
            try:
                value = spec.convert(current["value"])
            except Exception as exc:
                store_waits.reopen_wait(run.store, run.exec_id, seq, f"{type(exc).__name__}: {exc}")
                if prompt:
                    prompt.say(f"Failed to resolve: {exc}")
                continue
            run.resume_running()
            if prompt and prompt.shown and not prompt.answered_here:
                prompt.say("Input received from another source; continuing.")
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if _suspend(run, seq):
                raise WaitSuspended(record["name"])
            continue
        if prompt is not None:
            prompt.poll(min(_POLL, remaining))
        else:
            time.sleep(min(_POLL, remaining))


def _suspend(run: FlowRun, seq: int) -> bool:
    """At the deadline: True if the wait is still pending (checked under the lock)."""
    with run.store.locked(run.exec_id):
        current = store_waits.read_wait(run.store, run.exec_id, seq)
        return current is not None and current["status"] == "pending"


def _interactive() -> bool:
    if os.environ.get("KITARU_INTERACTIVE", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class _Prompt:
    """The in-terminal prompt, polled alongside the store."""

    def __init__(self, run: FlowRun, record: dict[str, Any], spec: _Schema) -> None:
        self.run = run
        self.record = record
        self.spec = spec
        self.shown = False
        self.answered_here = False

    def say(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def _show(self) -> None:
        self.shown = True
        schema = self.record.get("schema")
        lines = ["Waiting for input." if schema is not None else "Waiting for confirmation."]
        lines.append(self.record.get("question") or "Please provide input.")
        if schema is not None:
            lines.append(
                orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
            )
            lines.append("Enter a JSON value (an empty line submits null); Ctrl+C aborts.")
        else:
            lines.append("Press Enter to continue; Ctrl+C aborts.")
        self.say("\n".join(lines))
        sys.stdout.write("> ")
        sys.stdout.flush()

    def poll(self, seconds: float) -> None:
        if not self.shown:
            self._show()
        try:
            ready, _, _ = select.select([sys.stdin], [], [], seconds)
            if ready:
                self._answer(sys.stdin.readline())
        except KeyboardInterrupt:
            self.say("")
            try:
                store_waits.abort_wait(
                    self.run.store, self.run.exec_id, self.record["seq"], now=now_iso()
                )
            except Exception:
                pass
            raise CancelledSignal() from None

    def _answer(self, line: str) -> None:
        if line == "":  # EOF: stop prompting, keep polling the store
            self.shown = True
            self.poll = lambda seconds: time.sleep(seconds)  # type: ignore[method-assign]
            return
        text = line.strip()
        if not text:
            value: Any = None
        else:
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                if not self.spec.accepts_strings():
                    self.say("Invalid JSON; try again.")
                    sys.stdout.write("> ")
                    sys.stdout.flush()
                    return
                value = text
        try:
            store_waits.resolve_wait(
                self.run.store, self.run.exec_id, self.record["seq"], value, now=now_iso()
            )
            self.answered_here = True
        except Exception as exc:
            self.say(f"Failed to resolve: {exc}")
            sys.stdout.write("> ")
            sys.stdout.flush()
