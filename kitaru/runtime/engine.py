"""One execution being run in this process: call identity, journal reuse, recording.

The flow body runs from the top every time (new run, retry, resume). Each checkpoint call gets
a journal position (``seq``) and an invocation id in the flow's thread when it is made, so both
stay deterministic; a completed record at that position is reused instead of running again.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from kitaru.errors import FailureOrigin, KitaruDivergenceError, KitaruUsageError
from kitaru.runtime.cache import cache_key
from kitaru.runtime.capture import LogCapture
from kitaru.runtime.context import call_scope_var
from kitaru.runtime.failure import failure_from_exception
from kitaru.store import Store, now_iso
from kitaru.store.atomic import AppendStream
from kitaru.store.layout import validate_name

if TYPE_CHECKING:
    from kitaru.runtime.checkpoint import CheckpointDefinition

__all__ = ["CallScope", "CancelledSignal", "FlowRun"]

_MAX_WORKERS = 8


class CancelledSignal(BaseException):
    """Raised at a checkpoint boundary when the execution was cancelled.

    A ``BaseException`` so that ``except Exception`` in user code cannot swallow it.
    """


@dataclass
class CallScope:
    """A checkpoint call in progress: its identity plus what ``log``/``save`` collect."""

    run: FlowRun
    seq: int
    name: str
    invocation_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def call_id(self) -> str:
        """The call's id, which embeds the execution id."""
        return f"{self.run.exec_id}.c{self.seq}"


def _next_attempt(attempts: list[dict[str, Any]]) -> int:
    """The number of a call's next attempt: one after its last (unique even past a gap)."""
    if not attempts:
        return 1
    last = str(attempts[-1].get("attempt_id", "")).rpartition(".")[2]
    return int(last) + 1 if last.isdigit() else len(attempts) + 1


def merge_metadata(target: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Merge ``new`` into ``target``: dicts merge, anything else is last-write-wins."""
    for key, value in new.items():
        old = target.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            target[key] = merge_metadata(dict(old), value)
        else:
            target[key] = value
    return target


class FlowRun:
    """The state of one execution while this process runs its flow body."""

    def __init__(
        self,
        store: Store,
        exec_id: str,
        settings: dict[str, Any],
        journal: list[dict[str, Any]] | None = None,
        *,
        replay: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.exec_id = exec_id
        self.settings = settings
        self.journal = {rec["seq"]: rec for rec in journal or []}
        self._lock = threading.Lock()
        self._seq = 0
        self._counts: dict[str, int] = {}
        self._used: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[Any]] = []
        self.stopping = False
        self.diverged: KitaruDivergenceError | None = None
        self.capture = LogCapture(store, exec_id)
        store.upgrade()  # an older store is brought to the current format before any write
        self._starts: AppendStream | None = None
        self._state_seen: tuple[int, int, int] | None = None
        self.thread_id = threading.get_ident()
        # A replay: calls at or after its boundary never use the cache; overridden calls
        # (by invocation id) are recorded with the given output instead of running.
        self.no_cache_from: int | None = (replay or {}).get("boundary_seq")
        self.overrides: dict[str, dict[str, Any]] = dict((replay or {}).get("overrides") or {})

    # -- identity -------------------------------------------------------------------------

    def allocate(self, kind: str, name: str, custom_id: str | None) -> tuple[int, str]:
        """Give the next call its journal position and invocation id."""
        with self._lock:
            if custom_id is not None:
                inv = validate_name(f"{kind} id", custom_id)
                if inv in self._used:
                    raise KitaruUsageError(
                        f"The {kind} id '{inv}' is already used in this execution."
                    )
            else:
                count = self._counts.get(name, 0) + 1
                self._counts[name] = count
                inv = name if count == 1 else f"{name}_{count}"
                while inv in self._used:
                    count += 1
                    self._counts[name] = count
                    inv = f"{name}_{count}"
            self._used.add(inv)
            self._seq += 1
            return self._seq, inv

    def recorded(self, seq: int, kind: str, name: str, inv: str) -> dict[str, Any] | None:
        """The journal record at ``seq``, checked to be the same call (else divergence)."""
        rec = self.journal.get(seq)
        if rec is None:
            return None
        rec_kind = "wait" if "wait_id" in rec else "checkpoint"
        if rec_kind != kind or rec["invocation_id"] != inv or rec["name"] != name:
            # Sticky: the execution fails with it even if the body catches the exception.
            self.stopping = True
            self.diverged = KitaruDivergenceError(
                f"Flow body diverged from the recorded durable call sequence at position {seq}: "
                f"it called {kind} '{inv}' where the execution recorded {rec_kind} "
                f"'{rec['invocation_id']}'. The flow's code changed between runs; replay it into "
                "a new execution instead.",
                exec_id=self.exec_id,
                status="failed",
                failure_origin=FailureOrigin.DIVERGENCE,
            )
            raise self.diverged
        return rec

    # -- cancellation ----------------------------------------------------------------------

    def check_cancel(self) -> None:
        """Stop at this boundary if the execution was cancelled."""
        if self.stopping:
            raise CancelledSignal()
        # state.json is re-read only when it was replaced since the last look.
        signature = self.store.state_signature(self.exec_id)
        if signature == self._state_seen:
            return
        state = self.store.read_state(self.exec_id)
        if state.get("cancel_requested") or state["status"] == "cancelled":
            self.stopping = True
            raise CancelledSignal()
        self._state_seen = signature

    def cancelled(self) -> bool:
        """True once the execution was cancelled (checked while a wait polls)."""
        state = self.store.read_state(self.exec_id)
        return bool(state.get("cancel_requested")) or state["status"] == "cancelled"

    def resume_running(self) -> None:
        """Move the execution back from ``waiting`` to ``running`` once a wait is answered."""

        def to_running(state: dict[str, Any]) -> dict[str, Any]:
            if state["status"] == "waiting":
                state["status"] = "running"
            return state

        self.store.update_state(self.exec_id, to_running)

    # -- checkpoint calls --------------------------------------------------------------------

    def call(self, cp: CheckpointDefinition, seq: int, inv: str, args: tuple, kwargs: dict) -> Any:
        """Run (or reuse) one checkpoint call and return its output."""
        rec = self.recorded(seq, "checkpoint", cp.name, inv)
        if rec is not None and rec["status"] == "completed":
            return self._output(rec)
        self.check_cancel()
        override = self.overrides.get(inv) if rec is None else None
        if override is not None and override["name"] == cp.name:
            return self.store.decode(self._record_override(cp, seq, inv, override))
        key = None
        if rec is None and self._cache_allowed(seq):
            key = cache_key(cp.name, cp.source, args, kwargs)
            hit = self._from_cache(cp, seq, inv, key) if key else None
            if hit is not None:
                return self.store.decode(hit)
        value = self._execute(cp, seq, inv, args, kwargs, rec, key)
        if key:
            self.store.cache_put(key, self.exec_id, seq, inv)
        return value

    def _cache_allowed(self, seq: int) -> bool:
        if not self.settings.get("cache", True):
            return False
        return self.no_cache_from is None or seq < self.no_cache_from

    def _from_cache(
        self, cp: CheckpointDefinition, seq: int, inv: str, key: str
    ) -> dict[str, Any] | None:
        """Record a call from a cache hit; return its output reference (None on a miss)."""
        entry = self.store.cache_get(key)
        # The cache reuses work of earlier executions; repeated calls in one run all run.
        if entry is None or entry[0] == self.exec_id:
            return None
        try:
            source = self.store.read_call_file(*entry)
        except Exception:  # a stale or damaged entry is only a miss
            return None
        if source is None or source["status"] != "completed" or source.get("cache_key") != key:
            return None
        record = self._base_record(cp, seq, inv)
        artifacts = [
            {**art, "artifact_id": f"{self.exec_id}.a{seq}.{index}"}
            for index, art in enumerate(source["artifacts"])
        ]
        now = now_iso()
        record.update(
            status="completed",
            ended_at=now,
            artifacts=artifacts,
            metadata=dict(source["metadata"]),
            cached_from=source.get("cached_from") or source["call_id"],
            cache_key=key,
        )
        record["attempts"] = [self._done_attempt(record, {"cached": True})]
        self.write_call(record)
        return self._output_ref(record)

    def _record_override(
        self, cp: CheckpointDefinition, seq: int, inv: str, override: dict[str, Any]
    ) -> dict[str, Any]:
        """Record a replay override as this call's completed output; return its reference."""
        record = self._base_record(cp, seq, inv)
        marker = {"override": True}
        record.update(
            status="completed",
            ended_at=record["started_at"],
            metadata=marker,
            original_call_id=override["source_call_id"],
            attempts=[self._done_attempt(record, marker)],
            artifacts=[{**self._output_artifact(cp, seq, override["value"]), "metadata": marker}],
        )
        self.write_call(record)
        return override["value"]

    @staticmethod
    def _done_attempt(record: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
        return {
            "attempt_id": f"{record['call_id']}.1",
            "status": "completed",
            "started_at": record["started_at"],
            "ended_at": record["ended_at"],
            "metadata": metadata,
            "failure": None,
        }

    def _output(self, rec: dict[str, Any]) -> Any:
        ref = self._output_ref(rec)
        return self.store.decode(ref) if ref is not None else None

    @staticmethod
    def _output_ref(rec: dict[str, Any]) -> dict[str, Any] | None:
        for art in rec["artifacts"]:
            if art.get("save_type") == "step_output":
                return art["value"]
        return None

    def _base_record(self, cp: CheckpointDefinition, seq: int, inv: str) -> dict[str, Any]:
        return {
            "seq": seq,
            "call_id": f"{self.exec_id}.c{seq}",
            "name": cp.name,
            "invocation_id": inv,
            "checkpoint_type": cp.type,
            "status": "running",
            "started_at": now_iso(),
            "ended_at": None,
            "attempts": [],
            "artifacts": [],
            "metadata": {},
            "original_call_id": None,
            "cached_from": None,
            "parent_call_ids": [],
        }

    def write_call(self, record: dict[str, Any]) -> None:
        """Write a call record.

        No execution lock: this process holds the runner lock, which makes it the only writer
        of the execution's ``calls/`` (the lock orders changes between processes).
        """
        self.store.write_call(self.exec_id, record)

    def _note_start(self, record: dict[str, Any], attempt: int, started: str) -> None:
        """Append the call's start to ``started.jsonl`` (one line; not fsynced, like logs)."""
        line = orjson.dumps(
            {
                "seq": record["seq"],
                "invocation_id": record["invocation_id"],
                "name": record["name"],
                "checkpoint_type": record["checkpoint_type"],
                "attempt": attempt,
                "started_at": started,
            }
        )
        with self._lock:
            if self._starts is None:
                self._starts = self.store.start_stream(self.exec_id)
            self._starts.write_line(line)

    def _execute(
        self,
        cp: CheckpointDefinition,
        seq: int,
        inv: str,
        args: tuple,
        kwargs: dict,
        previous: dict[str, Any] | None,
        key: str | None = None,
    ) -> Any:
        # The record is built here and written once, when the call ends; until then a start
        # line shows the call running.
        record = self._base_record(cp, seq, inv)
        record["cache_key"] = key
        started = record["started_at"]
        if previous is not None:
            # A previous view still running (from start lines, or a format-1 record) is an
            # attempt whose runner died: it is counted as a failed attempt.
            attempts = Store.crashed_call(previous)["attempts"]
            record.update(attempts=list(attempts), started_at=previous["started_at"])
        attempts = record["attempts"]
        # One start line for the call: automatic retries within this run add none.
        self._note_start(record, _next_attempt(attempts), started)
        retries = cp.retries if cp.retries is not None else int(self.settings.get("retries") or 0)
        for number in range(retries + 1):
            if number:
                self.check_cancel()
                started = now_iso()
            attempt = _next_attempt(attempts)
            scope = CallScope(self, seq, cp.name, inv)
            token = call_scope_var.set(scope)
            try:
                value = cp.func(*args, **kwargs)
                output = self.store.encode(value)
            except Exception as exc:
                self._end_attempt(record, scope, attempt, started, failure_from_exception(exc))
                if number == retries:
                    self._write_ended(record, "failed")
                    raise
                continue
            except BaseException as exc:
                reason = "cancelled" if isinstance(exc, CancelledSignal) else "interrupted"
                failure = {
                    "message": reason,
                    "exception_type": type(exc).__name__,
                    "traceback": None,
                    "origin": "runtime",
                }
                self._end_attempt(record, scope, attempt, started, failure)
                self._write_ended(record, "failed")
                raise
            finally:
                call_scope_var.reset(token)
                self.capture.end_call(scope)
            self._end_attempt(record, scope, attempt, started, None)
            record["artifacts"] = [self._output_artifact(cp, seq, output), *scope.artifacts]
            record["metadata"] = dict(scope.metadata)
            self._write_ended(record, "completed")
            return value
        raise AssertionError("unreachable")

    def _end_attempt(
        self,
        record: dict[str, Any],
        scope: CallScope,
        attempt: int,
        started: str,
        failure: dict | None,
    ) -> None:
        """Add an ended attempt to ``record``; the call's ``ended_at`` is that attempt's end."""
        ended = now_iso()
        record["attempts"].append(
            {
                "attempt_id": f"{scope.call_id}.{attempt}",
                "status": "failed" if failure else "completed",
                "started_at": started,
                "ended_at": ended,
                "metadata": dict(scope.metadata),
                "failure": failure,
            }
        )
        record["ended_at"] = ended

    def _write_ended(self, record: dict[str, Any], status: str) -> None:
        record["status"] = status
        self.write_call(record)

    def _output_artifact(self, cp: CheckpointDefinition, seq: int, ref: dict) -> dict[str, Any]:
        return {
            "artifact_id": f"{self.exec_id}.a{seq}.0",
            "name": cp.name,
            "kind": None,
            "save_type": "step_output",
            "metadata": {},
            "value": ref,
        }

    # -- concurrency ---------------------------------------------------------------------------

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        """Run ``fn`` on a worker thread carrying this context."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_MAX_WORKERS, thread_name_prefix="kitaru")
            ctx = copy_context()
            future = self._pool.submit(ctx.run, fn, *args)
            self._futures.append(future)
        return future

    def settle(self) -> BaseException | None:
        """Wait for every submitted call; return the first failure, if any."""
        first: BaseException | None = None
        index = 0
        while True:
            with self._lock:
                if index >= len(self._futures):
                    break
                future = self._futures[index]
            index += 1
            try:
                future.result()
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                if first is None:
                    first = exc
                    self.stopping = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        return first

    def close(self) -> None:
        """Release what the run holds open."""
        with self._lock:
            if self._starts is not None:
                self._starts.close()

    # -- execution-level metadata ----------------------------------------------------------------

    def log_execution(self, values: dict[str, Any]) -> None:
        """Merge ``kitaru.log()`` values from the flow body into the execution's metadata."""

        def mutate(state: dict[str, Any]) -> dict[str, Any]:
            state["metadata"] = merge_metadata(dict(state["metadata"]), values)
            return state

        self.store.update_state(self.exec_id, mutate)
