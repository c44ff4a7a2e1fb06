"""Public records (frozen dataclasses) and their one JSON shape each; no I/O here.

The client gives each ``Execution`` and ``ArtifactRef`` a private reference to itself (left out
of equality, repr and JSON) so that ``execution.retry()`` or ``artifact.load()`` work without this
module importing the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from kitaru.errors import FailureOrigin, KitaruStateError

__all__ = [
    "ArtifactRef",
    "CheckpointAttempt",
    "CheckpointCall",
    "Execution",
    "ExecutionStatus",
    "FailureInfo",
    "FailureOrigin",
    "LogEntry",
    "PendingWait",
    "TERMINAL_STATUSES",
]


class ExecutionStatus(StrEnum):
    """The public status of an execution."""

    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)


def _bound(client: Any) -> Any:
    # Records made by KitaruClient carry it; models never import the client themselves.
    if client is None:
        raise KitaruStateError("This record is not bound to a KitaruClient; fetch it with one.")
    return client


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class FailureInfo:
    """Why an execution or a checkpoint attempt failed."""

    message: str
    exception_type: str | None = None
    traceback: str | None = None
    origin: FailureOrigin = FailureOrigin.UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return {
            "message": self.message,
            "exception_type": self.exception_type,
            "traceback": self.traceback,
            "origin": str(self.origin),
        }


@dataclass(frozen=True)
class ArtifactRef:
    """A value a checkpoint produced (its output, or one it saved by name)."""

    artifact_id: str
    name: str
    kind: str | None
    save_type: str
    producing_call: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    _client: Any = field(default=None, compare=False, repr=False)

    def load(self) -> Any:
        """Read the artifact's value back from the store."""
        return _bound(self._client).artifacts._load_value(self.artifact_id)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return {
            "artifact_id": self.artifact_id,
            "name": self.name,
            "kind": self.kind,
            "save_type": self.save_type,
            "producing_call": self.producing_call,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class CheckpointAttempt:
    """One attempt at running a checkpoint call."""

    attempt_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    metadata: dict[str, Any] = field(default_factory=dict)
    failure: FailureInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return {
            "attempt_id": self.attempt_id,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "metadata": self.metadata,
            "failure": self.failure.to_dict() if self.failure else None,
        }


@dataclass(frozen=True)
class CheckpointCall:
    """One call of a checkpoint in an execution (``name`` is the checkpoint's name)."""

    call_id: str
    name: str
    invocation_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    metadata: dict[str, Any] = field(default_factory=dict)
    original_call_id: str | None = None
    parent_call_ids: list[str] = field(default_factory=list)
    failure: FailureInfo | None = None
    attempts: list[CheckpointAttempt] = field(default_factory=list)
    artifacts: list[ArtifactRef] = field(default_factory=list)
    checkpoint_type: str | None = None
    cached_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return {
            "call_id": self.call_id,
            "name": self.name,
            "invocation_id": self.invocation_id,
            "checkpoint_type": self.checkpoint_type,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "metadata": self.metadata,
            "original_call_id": self.original_call_id,
            "parent_call_ids": list(self.parent_call_ids),
            "failure": self.failure.to_dict() if self.failure else None,
            "attempts": [a.to_dict() for a in self.attempts],
            "artifacts": [a.to_dict() for a in self.artifacts],
            "cached_from": self.cached_from,
        }


@dataclass(frozen=True)
class PendingWait:
    """A wait that is asking for input."""

    wait_id: str
    name: str
    question: str | None
    schema: dict[str, Any] | None
    metadata: dict[str, Any] = field(default_factory=dict)
    entered_waiting_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return {
            "wait_id": self.wait_id,
            "name": self.name,
            "question": self.question,
            "schema": self.schema,
            "metadata": self.metadata,
            "entered_waiting_at": _iso(self.entered_waiting_at),
        }


@dataclass(frozen=True)
class LogEntry:
    """One captured runtime log line."""

    message: str
    level: str | None = None
    timestamp: str | None = None
    source: str | None = None
    checkpoint_name: str | None = None
    module: str | None = None
    filename: str | None = None
    lineno: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape: ``message`` always, other keys only when set."""
        out: dict[str, Any] = {"message": self.message}
        for key in ("level", "timestamp", "source", "checkpoint_name", "module", "filename"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.lineno is not None:
            out["lineno"] = self.lineno
        return out


@dataclass(frozen=True)
class Execution:
    """One run of a flow. ``checkpoints`` and ``artifacts`` are empty in list summaries."""

    exec_id: str
    flow_id: str | None
    flow_name: str | None
    status: ExecutionStatus
    started_at: datetime | None
    ended_at: datetime | None
    stack_name: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    status_reason: str | None = None
    failure: FailureInfo | None = None
    pending_wait: PendingWait | None = None
    frozen_execution_spec: dict[str, Any] | None = None
    original_exec_id: str | None = None
    checkpoints: list[CheckpointCall] = field(default_factory=list)
    artifacts: list[ArtifactRef] = field(default_factory=list)
    checkpoint_count: int = 0
    artifact_count: int = 0
    cancel_requested: bool = False
    runner_alive: bool = False
    _client: Any = field(default=None, compare=False, repr=False)

    def _require_client(self) -> Any:
        return _bound(self._client)

    def refresh(self) -> Execution:
        """Return a fresh snapshot of this execution."""
        return self._require_client().executions.get(self.exec_id)

    def retry(self) -> Execution:
        """Retry this failed execution in place."""
        return self._require_client().executions.retry(self.exec_id)

    def resume(self) -> Execution:
        """Resume this waiting execution once its wait has input."""
        return self._require_client().executions.resume(self.exec_id)

    def cancel(self) -> Execution:
        """Cancel this execution."""
        return self._require_client().executions.cancel(self.exec_id)

    def replay(
        self, *, from_: str, overrides: dict[str, Any] | None = None, **flow_inputs: Any
    ) -> Execution:
        """Replay this execution into a new one from a checkpoint boundary."""
        return self._require_client().executions.replay(
            self.exec_id, from_=from_, overrides=overrides, **flow_inputs
        )

    def list_checkpoints(self) -> list[CheckpointCall]:
        """Return a copy of the checkpoint calls."""
        return list(self.checkpoints)

    def list_artifacts(self) -> list[ArtifactRef]:
        """Return a copy of the artifacts."""
        return list(self.artifacts)

    def with_client(self, client: Any) -> Execution:
        """Return this snapshot bound to a client (used by the client itself)."""
        return replace(self, _client=client)

    def to_summary_dict(self) -> dict[str, Any]:
        """Return the summary JSON shape used in lists."""
        return {
            "exec_id": self.exec_id,
            "flow_id": self.flow_id,
            "flow_name": self.flow_name,
            "status": str(self.status),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "stack_name": self.stack_name,
            "status_reason": self.status_reason,
            "pending_wait": self.pending_wait.to_dict() if self.pending_wait else None,
            "failure": self.failure.to_dict() if self.failure else None,
            "metadata": self.metadata,
            "checkpoint_count": self.checkpoint_count,
            "artifact_count": self.artifact_count,
            "original_exec_id": self.original_exec_id,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the full JSON shape."""
        out = self.to_summary_dict()
        out["frozen_execution_spec"] = self.frozen_execution_spec
        out["cancel_requested"] = self.cancel_requested
        out["runner_alive"] = self.runner_alive
        out["checkpoints"] = [c.to_dict() for c in self.checkpoints]
        out["artifacts"] = [a.to_dict() for a in self.artifacts]
        return out
