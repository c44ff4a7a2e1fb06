"""KitaruClient: every management operation over the store, returning public models.

The client resolves the project at every call and never caches its absence, so a client made
before ``kitaru init`` (or before the first run) starts working as soon as a store exists.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kitaru.errors import (
    FailureOrigin,
    KitaruFeatureNotAvailableError,
    KitaruNotFoundError,
    KitaruProjectNotFoundError,
    KitaruStateError,
    KitaruUsageError,
)
from kitaru.models import (
    ArtifactRef,
    CheckpointAttempt,
    CheckpointCall,
    Execution,
    ExecutionStatus,
    FailureInfo,
    LogEntry,
    PendingWait,
)
from kitaru.store.layout import validate_name

if TYPE_CHECKING:
    from kitaru.store import Store

__all__ = ["ExecutionStatus", "FailureOrigin", "KitaruClient"]

_STATUS_VALUES = ", ".join(s.value for s in ExecutionStatus)
_SECRET_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _failure(data: dict[str, Any] | None) -> FailureInfo | None:
    if not data:
        return None
    origin = data.get("origin") or "unknown"
    try:
        origin_enum = FailureOrigin(origin)
    except ValueError:
        origin_enum = FailureOrigin.UNKNOWN
    return FailureInfo(
        message=str(data.get("message") or "failed"),
        exception_type=data.get("exception_type"),
        traceback=data.get("traceback"),
        origin=origin_enum,
    )


def _check_limit(limit: int | None) -> None:
    if limit is not None and (type(limit) is not int or limit < 1):
        raise KitaruUsageError("`limit` must be >= 1 when provided.")


def _normalize_status(status: ExecutionStatus | str | None) -> str | None:
    if status is None:
        return None
    text = str(status.value if isinstance(status, ExecutionStatus) else status).strip().lower()
    if text not in {s.value for s in ExecutionStatus}:
        raise KitaruUsageError(
            f"Unsupported status filter '{status}'. Expected one of: {_STATUS_VALUES}."
        )
    return text


def mask_secret(name: str, value: str) -> str:
    """Mask a secret-looking environment value as upstream does."""
    if not any(hint in name.upper() for hint in _SECRET_HINTS):
        return value
    if len(value) >= 8:
        return value[:8] + "***"
    if len(value) >= 6:
        return value[:6] + "***"
    return "***"


class KitaruClient:
    """Programmatic access to the executions and artifacts of the current project."""

    def __init__(
        self,
        *,
        server_url: str | None = None,
        auth_token: str | None = None,
        project: str | None = None,
    ) -> None:
        given = sorted(
            name
            for name, value in (
                ("auth_token", auth_token),
                ("project", project),
                ("server_url", server_url),
            )
            if value is not None
        )
        if given:
            raise KitaruFeatureNotAvailableError(
                "Per-client connection overrides are not implemented yet "
                f"(received: {', '.join(given)}). Set KITARU_PROJECT_DIR or use "
                "`kitaru --project PATH` to choose a store."
            )
        self.executions = _Executions(self)
        self.artifacts = _Artifacts(self)
        self.project = _Project(self)

    def _find_store(self) -> Store | None:
        from kitaru.store import Store

        return Store.find()

    def _store(self) -> Store:
        from kitaru.store import Store

        return Store.open()

    # -- mapping records to models -----------------------------------------------------------

    def _artifact(self, exec_id: str, call: dict[str, Any], art: dict[str, Any]) -> ArtifactRef:
        return ArtifactRef(
            artifact_id=art["artifact_id"],
            name=art["name"],
            kind=art.get("kind"),
            save_type=art.get("save_type", "step_output"),
            producing_call=call["name"],
            metadata=dict(art.get("metadata") or {}),
            _client=self,
        )

    def _call(self, exec_id: str, rec: dict[str, Any]) -> CheckpointCall:
        attempts = [
            CheckpointAttempt(
                attempt_id=a["attempt_id"],
                status=a["status"],
                started_at=_dt(a.get("started_at")),
                ended_at=_dt(a.get("ended_at")),
                metadata=dict(a.get("metadata") or {}),
                failure=_failure(a.get("failure")),
            )
            for a in rec["attempts"]
        ]
        return CheckpointCall(
            call_id=rec["call_id"],
            name=rec["name"],
            invocation_id=rec["invocation_id"],
            status=rec["status"],
            started_at=_dt(rec.get("started_at")),
            ended_at=_dt(rec.get("ended_at")),
            metadata=dict(rec["metadata"]),
            original_call_id=rec.get("original_call_id"),
            parent_call_ids=list(rec.get("parent_call_ids") or []),
            failure=attempts[-1].failure if attempts else None,
            attempts=attempts,
            artifacts=[self._artifact(exec_id, rec, a) for a in rec["artifacts"]],
            checkpoint_type=rec.get("checkpoint_type"),
            cached_from=rec.get("cached_from"),
        )

    @staticmethod
    def _pending(exec_id: str, waits: list[dict[str, Any]]) -> PendingWait | None:
        for wait in waits:
            if wait["status"] == "pending":
                return PendingWait(
                    wait_id=wait["wait_id"],
                    name=wait["name"],
                    question=wait.get("question"),
                    schema=wait.get("schema"),
                    metadata=dict(wait["metadata"]),
                    entered_waiting_at=_dt(wait.get("created_at")),
                )
        return None

    def _execution(self, store: Store, exec_id: str, *, full: bool) -> Execution:
        state = store.effective_state(store.read_state(exec_id))
        status = ExecutionStatus(state["status"])
        calls = store.list_calls(exec_id)
        waits = store.list_waits(exec_id) if status == ExecutionStatus.WAITING or full else []
        if state.get("crashed"):
            calls = [store.crashed_call(c) for c in calls]
        checkpoints = [self._call(exec_id, c) for c in calls] if full else []
        artifacts: list[ArtifactRef] = []
        seen: set[str] = set()
        for call in checkpoints:
            for art in call.artifacts:
                if art.artifact_id not in seen:
                    seen.add(art.artifact_id)
                    artifacts.append(art)
        spec = store.read_spec(exec_id) if full else None
        return Execution(
            exec_id=exec_id,
            flow_id=state["flow_name"],
            flow_name=state["flow_name"],
            status=status,
            started_at=_dt(state.get("started_at") or state["created_at"]),
            ended_at=_dt(state.get("ended_at")),
            stack_name=state.get("stack") or "local",
            metadata=dict(state["metadata"]),
            status_reason=state.get("status_reason"),
            failure=_failure(state.get("failure")) if status == ExecutionStatus.FAILED else None,
            pending_wait=self._pending(exec_id, waits),
            frozen_execution_spec=_frozen_spec(spec) if spec else None,
            original_exec_id=state.get("original_exec_id"),
            checkpoints=checkpoints,
            artifacts=artifacts,
            checkpoint_count=len(calls),
            artifact_count=sum(len(c["artifacts"]) for c in calls),
            cancel_requested=bool(state.get("cancel_requested")),
            runner_alive=status == ExecutionStatus.RUNNING
            or (status == ExecutionStatus.WAITING and store.runner_alive(exec_id)),
            _client=self,
        )


def _frozen_spec(spec: dict[str, Any]) -> dict[str, Any]:
    settings = spec.get("settings") or {}
    resolved = {k: settings.get(k) for k in ("stack", "image", "cache", "retries")}
    return {
        "version": 1,
        "resolved_execution": resolved,
        "flow_defaults": dict(spec.get("flow_defaults") or {}),
        "connection": {"server_url": None, "auth_token": None, "project": None},
        "model_registry": None,
    }


class _Executions:
    """``client.executions``."""

    def __init__(self, client: KitaruClient) -> None:
        self._client = client

    def _resolve(self, store: Store, exec_id: str) -> str:
        return store.resolve_exec_id(exec_id)

    def get(self, exec_id: str) -> Execution:
        """Return one execution with its checkpoints, attempts, artifacts and pending wait."""
        store = self._client._store()
        return self._client._execution(store, self._resolve(store, exec_id), full=True)

    def list(
        self,
        *,
        flow: str | None = None,
        status: ExecutionStatus | str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[Execution]:
        """Return execution summaries, newest first (``since``: started at or after it)."""
        _check_limit(limit)
        wanted = _normalize_status(status)
        if since is not None and since.tzinfo is None:
            since = since.astimezone()  # a naive time is local time
        store = self._client._find_store()
        if store is None:
            return []
        out: list[Execution] = []
        for exec_id in store.candidate_ids(status=wanted, flow=flow):
            try:
                execution = self._client._execution(store, exec_id, full=False)
            except (KitaruNotFoundError, FileNotFoundError):
                continue  # an execution still being created
            except Exception as exc:  # a corrupt record: skip it, say so
                warnings.warn(f"Skipping execution {exec_id}: {exc}", RuntimeWarning, stacklevel=2)
                continue
            if since is not None and execution.started_at and execution.started_at < since:
                break  # ids sort by creation time: every later one is older still
            if wanted is not None and execution.status != wanted:
                continue
            if flow is not None and execution.flow_name != flow:
                continue
            out.append(execution)
            if limit is not None and len(out) >= limit:
                break
        return out

    def latest(
        self, *, flow: str | None = None, status: ExecutionStatus | str | None = None
    ) -> Execution:
        """Return the newest matching execution or raise ``LookupError``."""
        found = self.list(flow=flow, status=status, limit=1)
        if not found:
            filters = []
            if flow is not None:
                filters.append(f"flow='{flow}'")
            if status is not None:
                filters.append(f"status='{_normalize_status(status)}'")
            where = " and ".join(filters) if filters else "the current project"
            raise LookupError(f"No executions found for {where}.")
        return self.get(found[0].exec_id)

    def logs(
        self,
        exec_id: str,
        *,
        checkpoint: str | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """Return captured runtime log lines in time order.

        ``checkpoint`` matches a checkpoint name (all its invocations) or one invocation id;
        ``source`` narrows to ``step`` or ``runner`` lines (both by default).
        """
        _check_limit(limit)
        if checkpoint is not None and not str(checkpoint).strip():
            raise KitaruUsageError("`checkpoint` must be non-empty when provided.")
        if source is not None:
            source = str(source).strip().lower()
            if not source:
                raise KitaruUsageError("`source` must be non-empty when provided.")
            if source not in ("step", "runner"):
                raise KitaruUsageError("`source` must be 'step' or 'runner'.")
        if checkpoint is not None and source == "runner":
            raise KitaruUsageError("`checkpoint` cannot be combined with `source='runner'`.")
        store = self._client._store()
        exec_id = self._resolve(store, exec_id)
        entries = store.read_logs(exec_id)
        if checkpoint is not None:
            checkpoint = validate_name("checkpoint name", checkpoint.strip())
            entries = [
                e
                for e in entries
                if checkpoint in (e.get("checkpoint_name"), e.get("invocation_id"))
            ]
        if source is not None:
            entries = [e for e in entries if e.get("source") == source]
        entries.sort(key=lambda e: e.get("timestamp") or "\uffff")
        if limit is not None:
            entries = entries[:limit]
        fields = LogEntry.__dataclass_fields__
        return [
            LogEntry(
                **{k: v for k, v in e.items() if k in fields and k != "message"},
                message=str(e.get("message") or ""),
            )
            for e in entries
        ]

    def pending_waits(self, exec_id: str) -> list[PendingWait]:
        """The execution's pending waits, oldest first."""
        store = self._client._store()
        exec_id = self._resolve(store, exec_id)
        return [
            self._client._pending(exec_id, [w])
            for w in store.list_waits(exec_id)
            if w["status"] == "pending"
        ]  # type: ignore[misc]

    def _select_wait(self, store: Store, exec_id: str, wait: str) -> dict[str, Any]:
        selector = wait.strip() if isinstance(wait, str) else ""
        if not selector:
            raise KitaruUsageError("`wait` must be a non-empty string.")
        pending = [w for w in store.list_waits(exec_id) if w["status"] == "pending"]
        if not pending:
            raise KitaruStateError(f"Execution '{exec_id}' has no pending waits to resolve.")
        by_name = [w for w in pending if w["name"] == selector]
        if len(by_name) > 1:
            raise KitaruStateError(
                f"Multiple pending waits match '{selector}' for execution '{exec_id}'."
            )
        matches = by_name or [w for w in pending if selector in (w["wait_id"], w["invocation_id"])]
        if not matches:
            names = ", ".join(sorted({w["name"] for w in pending}))
            raise KitaruStateError(
                f"Execution '{exec_id}' has no pending wait '{selector}'. Available waits: {names}."
            )
        return matches[0]

    def input(self, exec_id: str, *, wait: str, value: Any) -> Execution:
        """Answer a pending wait (by name or wait id), validated against its schema first."""
        from kitaru.store import now_iso
        from kitaru.store import waits as store_waits

        store = self._client._store()
        exec_id = self._resolve(store, exec_id)
        record = self._select_wait(store, exec_id, wait)
        store_waits.resolve_wait(store, exec_id, record["seq"], value, now=now_iso())
        return self.get(exec_id)

    def abort_wait(self, exec_id: str, *, wait: str) -> Execution:
        """Abort a pending wait; the execution ends ``cancelled``."""
        from kitaru.store import now_iso
        from kitaru.store import waits as store_waits

        store = self._client._store()
        exec_id = self._resolve(store, exec_id)
        record = self._select_wait(store, exec_id, wait)
        store_waits.abort_wait(store, exec_id, record["seq"], now=now_iso())
        return self.get(exec_id)

    def resume(self, exec_id: str) -> Execution:
        """Continue a waiting execution whose runner has exited, once its waits have input."""
        store = self._client._store()
        exec_id = self._resolve(store, exec_id)
        if any(w["status"] == "pending" for w in store.list_waits(exec_id)):
            raise KitaruStateError(
                f"Resolve pending wait input before resuming execution '{exec_id}'."
            )
        status = store.effective_state(store.read_state(exec_id))["status"]
        if status != "waiting":
            raise KitaruStateError(
                f"Only paused executions can be resumed. Execution '{exec_id}' is currently "
                f"'{status}'."
            )
        if store.runner_alive(exec_id):
            raise KitaruStateError(
                f"Execution '{exec_id}' still has a live runner, which continues it by itself."
            )
        from kitaru.runtime.launch import start_runner

        start_runner(store, exec_id, expect={"waiting"}, verb="resume")
        return self.get(exec_id)

    def run(
        self, target: str, *, args: dict[str, Any] | None = None, detach: bool = False
    ) -> Execution:
        """Start the flow ``<module_or_file.py>:<flow_name>`` with keyword ``args``.

        In the foreground (default) the flow runs in this process and this returns once it
        finishes or waits; with ``detach`` a runner process runs it and this returns at once.
        """
        from kitaru.runtime.launch import load_target, start_new
        from kitaru.store.waits import check_input

        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise KitaruUsageError("`args` must be an object when provided.")
        for name, value in args.items():
            check_input(value, f"flow input '{name}'")
        flow_def = load_target(target)
        exec_id = start_new(flow_def, args) if detach else flow_def.run(**args).exec_id
        return self.get(exec_id)

    def replay(
        self,
        exec_id: str,
        *,
        from_: str,
        overrides: dict[str, Any] | None = None,
        **flow_inputs: Any,
    ) -> Execution:
        """Replay an execution into a new one from a checkpoint boundary (detached runner)."""
        from kitaru.runtime.launch import start_replay
        from kitaru.store.waits import check_input

        for key, value in (overrides or {}).items() if isinstance(overrides, dict) else ():
            check_input(value, f"override '{key}'")
        for name, value in flow_inputs.items():
            check_input(value, f"flow input '{name}'")
        store = self._client._store()
        source_id = self._resolve(store, exec_id)
        return self.get(start_replay(store, source_id, from_, overrides, flow_inputs))

    def retry(self, exec_id: str) -> Execution:
        """Re-run a failed execution in place (same id), reusing its finished checkpoints."""
        store = self._client._store()
        exec_id = self._resolve(store, exec_id)
        status = store.effective_state(store.read_state(exec_id))["status"]
        if status != "failed":
            raise KitaruStateError(
                f"Only failed executions can be retried. Execution '{exec_id}' is currently "
                f"'{status}'."
            )
        from kitaru.runtime.launch import start_runner

        # A stored "running" whose runner lock is free is a crashed run: retryable too.
        start_runner(store, exec_id, expect={"failed", "running"}, verb="retry")
        return self.get(exec_id)

    def cancel(self, exec_id: str, *, timeout: float = 10.0) -> Execution:
        """Cancel a running or waiting execution.

        A waiting execution is cancelled at once. A running one is asked to stop at its next
        checkpoint boundary; this waits up to ``timeout`` seconds for that and returns the
        refreshed execution (still ``running`` with ``cancel_requested`` if it is busy longer).
        """
        store = self._client._store()
        exec_id = self._resolve(store, exec_id)
        if store.request_cancel(exec_id) == "cancelled":
            return self.get(exec_id)
        deadline = time.monotonic() + max(0.0, timeout)
        while time.monotonic() < deadline:
            if store.effective_state(store.read_state(exec_id))["status"] != "running":
                break
            time.sleep(0.02)
        return self.get(exec_id)


class _Artifacts:
    """``client.artifacts``."""

    def __init__(self, client: KitaruClient) -> None:
        self._client = client

    def list(
        self,
        exec_id: str,
        *,
        name: str | None = None,
        kind: str | None = None,
        producing_call: str | None = None,
        limit: int | None = None,
    ) -> list[ArtifactRef]:
        """Return an execution's artifacts, optionally filtered."""
        _check_limit(limit)
        items = self._client.executions.get(exec_id).artifacts
        if name is not None:
            items = [a for a in items if a.name == name]
        if kind is not None:
            items = [a for a in items if a.kind == kind]
        if producing_call is not None:
            items = [a for a in items if a.producing_call == producing_call]
        return items[:limit] if limit is not None else items

    def _find(self, store: Store, artifact_id: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        from kitaru.store.layout import parse_sub_id

        prefix, seq, index = parse_sub_id("artifact id", artifact_id, "a")
        try:
            exec_id = store.resolve_exec_id(prefix)  # the execution part may be a prefix
            call = store.read_call(exec_id, seq)
        except KitaruNotFoundError:
            call = None
        wanted = index if index is not None else 0
        if call is not None:
            for art in call["artifacts"]:
                if art["artifact_id"] == f"{exec_id}.a{seq}.{wanted}":
                    return exec_id, call, art
        raise KitaruNotFoundError(f"Failed to load artifact '{artifact_id}': no such artifact.")

    def get(self, artifact_id: str) -> ArtifactRef:
        """Return one artifact by id."""
        store = self._client._store()
        exec_id, call, art = self._find(store, artifact_id)
        return self._client._artifact(exec_id, call, art)

    def _load_value(self, artifact_id: str) -> Any:
        store = self._client._store()
        _exec_id, _call, art = self._find(store, artifact_id)
        return store.decode(art["value"])


class _Project:
    """``client.project``: the store itself (init, status, stacks, doctor)."""

    def __init__(self, client: KitaruClient) -> None:
        self._client = client

    def init(self, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Create a store in ``path`` (default: the working directory)."""
        from kitaru.store import Store

        target = Path(path).expanduser().absolute() if path is not None else Path.cwd()
        if not target.is_dir():
            raise KitaruUsageError(f"Target path is not a directory: {target}")
        store = Store.init(target)
        return {"path": str(target), "repository_directory": store.root.name}

    def status(self) -> dict[str, Any]:
        """A snapshot of the project, its store and the environment."""
        from kitaru import __version__

        store = self._client._find_store()
        counts = {s.value: 0 for s in ExecutionStatus}
        if store is not None:
            for execution in self._client.executions.list():
                counts[execution.status.value] += 1
        env = [
            {"name": name, "value": mask_secret(name, value)}
            for name, value in sorted(os.environ.items())
            if name.startswith("KITARU_")
        ]
        return {
            "sdk_version": __version__,
            "connection": "local store",
            "repository_root": str(store.project_root) if store else None,
            "config_directory": str(store.root) if store else None,
            "active_stack": "local",
            "environment": env,
            "warning": None if store else "No Kitaru project found (run `kitaru init`).",
            "python_version": "{}.{}.{}".format(*sys.version_info[:3]),
            "format": store.format if store else None,
            "durability": store.durability if store else None,
            "executions": counts,
        }

    def stacks(self) -> list[dict[str, Any]]:
        """The stacks this tool knows: only the built-in ``local`` one."""
        return [{"id": "local", "name": "local", "is_active": True, "is_managed": True}]

    def doctor(self, *, fix: bool = False) -> dict[str, Any]:
        """Check every record, blob and index entry; with ``fix``, repair what is safe."""
        from kitaru.store.check import check_store

        store = self._client._find_store()
        if store is None:
            raise KitaruProjectNotFoundError("No Kitaru project found (run `kitaru init`).")
        return check_store(store, fix=fix)
