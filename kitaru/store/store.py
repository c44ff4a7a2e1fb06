"""The Store facade: one ``.kitaru/`` folder, its executions and their records.

This is the only code that touches the store on disk. Mutable records change under the
execution lock as a compare-and-swap on the status the caller expects; readers take no lock.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from kitaru.errors import (
    KitaruCorruptRecordError,
    KitaruNotFoundError,
    KitaruProjectNotFoundError,
    KitaruStateError,
    KitaruUsageError,
)
from kitaru.store import layout
from kitaru.store.atomic import (
    MAX_LINE,
    AppendStream,
    append_line,
    ensure_dir,
    fsync_dir,
    is_torn_line,
    read_bytes,
    write_atomic,
    write_once,
)
from kitaru.store.index import Index
from kitaru.store.locks import FileLock, is_locked
from kitaru.store.objects import BlobStore, decode_value, encode_value
from kitaru.store.records import (
    EXECUTION_STATUSES,
    SCHEMA_VERSION,
    check_shape,
    dump_json,
    dump_yaml,
    load_json,
    load_yaml,
    read_json_record,
    read_yaml_record,
    write_json_record,
)

__all__ = [
    "FORMAT",
    "RUNNER_EXITED",
    "Store",
    "now_iso",
    "start_line_problem",
]

FORMAT = 2
RUNNER_EXITED = "the runner process exited"
NO_PROJECT = "No Kitaru project found (run `kitaru init`)."
_HEX_DIGITS = "0123456789abcdef"
#: Status markers every filtered listing reads (see Store.candidate_ids and swap_state).
ALWAYS_LISTED = ("running", "waiting")
_MAX_STARTS = 1 << 30
_LEGACY_FAN = re.compile(r"[0-9a-f]{2}")
_LEGACY_ENTRY = re.compile(r"[0-9a-f]{62}\.json")
_START_FIELDS = {
    "seq": int,
    "invocation_id": str,
    "name": str,
    "attempt": int,
    "started_at": str,
}
_DEFAULT_CONFIG = {"schema_version": 1, "durability": "full", "default_wait_timeout": 600}


def now_iso() -> str:
    """The current time as an ISO 8601 UTC string with microseconds.

    The same text as ``datetime.now(UTC).isoformat()``; the part up to the second is formatted
    once per second (a run takes several timestamps per checkpoint).
    """
    global _second_text
    second, micro = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _second_text
    if cached[0] != second:
        cached = _second_text = (second, datetime.fromtimestamp(second, UTC).isoformat()[:19])
    return f"{cached[1]}.{micro:06d}+00:00" if micro else f"{cached[1]}+00:00"


_second_text: tuple[int, str] = (-1, "")


def start_line_problem(entry: Any) -> str | None:
    """What is wrong with one ``started.jsonl`` line, or None when it is well formed."""
    if not isinstance(entry, dict):
        return "not an object"
    for key, expected in _START_FIELDS.items():
        value = entry.get(key)
        if not isinstance(value, expected) or isinstance(value, bool):
            return f"field {key!r} is missing or has the wrong type"
    if entry["seq"] < 1 or entry["attempt"] < 1:
        return "'seq' and 'attempt' must be positive"
    if not isinstance(entry.get("checkpoint_type"), str | None):
        return "field 'checkpoint_type' has the wrong type"
    try:
        layout.validate_name("invocation id", entry["invocation_id"])
    except KitaruUsageError as exc:
        return str(exc)
    try:
        datetime.fromisoformat(entry["started_at"])
    except ValueError:
        return "field 'started_at' is not an ISO 8601 time"
    return None


def _seq_name(seq: int, invocation_id: str) -> str:
    return f"{seq:04d}-{invocation_id}.json"


class Store:
    """One ``.kitaru/`` folder."""

    def __init__(self, root: Path, fmt: int = FORMAT) -> None:
        self.root = root
        self.format = fmt
        self.index = Index(root / "index")
        self._exec_dirs: dict[str, Path] = {}
        self._folders: dict[tuple[str, str | None], str] = {}
        self._executions_dir = f"{root}/executions"
        self._cache_dir = f"{root}/cache"
        env = layout.durability_from_env()
        if env is not None:
            self._check_durability(env)

    # config.yaml is read only when something needs it, so read-only commands stay fast.
    @functools.cached_property
    def config(self) -> dict[str, Any]:
        """The project settings in ``config.yaml`` (defaults where absent)."""
        return self._read_config()

    @functools.cached_property
    def durability(self) -> str:
        """``full`` (fsync every record) or ``fast`` (no fsync)."""
        value = layout.durability_from_env() or str(self.config.get("durability", "full"))
        return self._check_durability(value)

    @staticmethod
    def _check_durability(value: str) -> str:
        if value not in ("full", "fast"):
            raise KitaruUsageError(f"Invalid durability {value!r}: expected 'full' or 'fast'.")
        return value

    @property
    def durable(self) -> bool:
        """Whether writes are fsynced."""
        return self.durability == "full"

    @functools.cached_property
    def blobs(self) -> BlobStore:
        """The content-addressed ``objects/`` folder."""
        return BlobStore(self.root / "objects", durable=self.durable)

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def find(cls, override: str | os.PathLike[str] | None = None) -> Store | None:
        """Open the store that applies here, or return None if there is none."""
        root = layout.find_store(override)
        return cls.open_at(root) if root is not None else None

    @classmethod
    def open(cls, override: str | os.PathLike[str] | None = None) -> Store:
        """Open the store that applies here or raise ``KitaruProjectNotFoundError``."""
        store = cls.find(override)
        if store is None:
            where = f" at {override}" if override is not None else ""
            raise KitaruProjectNotFoundError(NO_PROJECT[:-1] + where + "." if where else NO_PROJECT)
        return store

    @classmethod
    def open_at(cls, root: Path) -> Store:
        """Open the store folder ``root`` after checking its format."""
        path = f"{root}/format.json"
        try:
            data = load_json(read_bytes(path), path)
        except FileNotFoundError:
            raise KitaruProjectNotFoundError(
                f"{root} is not a Kitaru store (no format.json)."
            ) from None
        fmt = data.get("format") if isinstance(data, dict) else None
        if type(fmt) is not int:
            raise KitaruCorruptRecordError(path, "missing integer 'format'")
        if fmt > FORMAT:
            raise KitaruStateError(
                f"The store {root} uses format {fmt}, newer than this kitaru supports "
                f"({FORMAT}). Upgrade kitaru to use it."
            )
        if fmt < 1:
            raise KitaruCorruptRecordError(path, f"unsupported format {fmt}")
        return cls(root, fmt)

    def upgrade(self) -> bool:
        """Bring an older store to the current format before writing to it; True if it did.

        Format 1 differs in its cache (``cache/<aa>/<rest>.json`` records): the entries are
        turned into hard links to their call records, then ``format.json`` is bumped, so an
        interrupted upgrade is simply done again. Upgrades are serialised by a lock on the
        store folder. Readers need no upgrade: every format-1 record reads as before.
        """
        if self.format >= FORMAT:
            return False
        # The real folder: .kitaru may be reached through a symlink (locks never follow one).
        with FileLock(Path(os.path.realpath(self.root)), what="store lock", folder=True):
            path = self.root / "format.json"
            current = load_json(read_bytes(path), path)
            if isinstance(current, dict) and current.get("format") == FORMAT:
                self.format = FORMAT  # another process upgraded it meanwhile
                return False
            self.convert_legacy_cache()
            write_atomic(path, orjson.dumps({"format": FORMAT}) + b"\n")
        self.format = FORMAT
        return True

    @classmethod
    def init(cls, project_root: Path) -> Store:
        """Create ``<project_root>/.kitaru`` (refusing an existing one) and open it."""
        root = project_root / layout.STORE_DIRNAME
        if root.exists():
            raise KitaruStateError(f"Already initialized: {root} exists.")
        store, created = cls._create(root)
        if not created:
            raise KitaruStateError(f"Already initialized: {root} exists.")
        return store

    @classmethod
    def open_or_create(cls) -> tuple[Store, bool]:
        """Open the applicable store, creating one (as ``flow.run`` does) when there is none."""
        store = cls.find()
        if store is not None:
            return store, False
        root = layout.default_project_root() / layout.STORE_DIRNAME
        if (root / "format.json").is_file():
            return cls.open_at(root), False
        return cls._create(root)

    @classmethod
    def _create(cls, root: Path) -> tuple[Store, bool]:
        """Build a store beside ``root`` and rename it into place; True if this call made it.

        The rename makes a store appear complete or not at all, so a reader never finds a
        half-made one, and of two processes creating it at once exactly one wins.
        """
        tmp = root.parent / f".kitaru-new.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        ensure_dir(tmp)
        try:
            statuses = [f"index/status/{status}" for status in EXECUTION_STATUSES]
            for sub in ("executions", "objects", "cache", *statuses, "index/flow"):
                ensure_dir(tmp / sub)
            write_atomic(tmp / "config.yaml", dump_yaml(_DEFAULT_CONFIG))
            write_atomic(tmp / ".gitignore", b"# Run state stays out of your repository.\n*\n")
            write_atomic(tmp / "format.json", orjson.dumps({"format": FORMAT}) + b"\n")
            try:
                os.rename(tmp, root)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                return cls.open_at(root), False
            fsync_dir(root.parent)
        finally:
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        return cls(root), True

    def _read_config(self) -> dict[str, Any]:
        path = self.root / "config.yaml"
        try:
            data = load_yaml(read_bytes(path), path)
        except FileNotFoundError:
            return dict(_DEFAULT_CONFIG)
        if not isinstance(data, dict):
            raise KitaruCorruptRecordError(path, "expected a mapping")
        return {**_DEFAULT_CONFIG, **data}

    @property
    def project_root(self) -> Path:
        """The folder that holds the store (the store's parent)."""
        return self.root.parent

    # -- paths ---------------------------------------------------------------------------------

    def exec_dir(self, exec_id: str) -> Path:
        """Folder of one execution (the id is validated first)."""
        path = self._exec_dirs.get(exec_id) if isinstance(exec_id, str) else None
        if path is None:
            layout.validate_name("execution id", exec_id)
            path = self._exec_dirs[exec_id] = self.root / "executions" / exec_id
        return path

    def _folder(self, exec_id: str, name: str | None = None) -> str:
        """The execution's folder, or its subfolder ``name`` (created on first use), as a string.

        Strings, not ``Path`` objects, on the per-run and per-checkpoint paths: joining ``Path``
        objects (about 2 us each) was a large part of an empty run's and a fast checkpoint's cost.
        """
        path = self._folders.get((exec_id, name)) if isinstance(exec_id, str) else None
        if path is None:
            folder = self.exec_dir(exec_id)
            if name is not None:
                folder = folder / name
                ensure_dir(folder, durable=self.durable)
            path = self._folders[(exec_id, name)] = str(folder)
        return path

    def _state_file(self, exec_id: str) -> str:
        """The execution's ``state.json`` (which must exist) as a string."""
        path = f"{self._folder(exec_id)}/state.json"
        if not os.path.isfile(path):
            raise KitaruNotFoundError(f"Failed to load execution '{exec_id}': no such execution.")
        return path

    def _require(self, exec_id: str) -> Path:
        self._state_file(exec_id)
        return self.exec_dir(exec_id)

    def exec_ids(self) -> list[str]:
        """Every execution id, newest first."""
        try:
            names = os.listdir(self.root / "executions")
        except FileNotFoundError:
            return []
        return sorted((n for n in names if n.startswith("kr-")), reverse=True)

    def resolve_exec_id(self, prefix: str) -> str:
        """Resolve a full id or a unique prefix (``kr-`` may be left out)."""
        if not isinstance(prefix, str) or not prefix.strip():
            raise KitaruUsageError("An execution id is required.")
        layout.validate_name("execution id", prefix)  # never stripped or rewritten
        if (self.root / "executions" / prefix / "state.json").is_file():
            return prefix
        wanted = prefix if prefix.startswith("kr-") else f"kr-{prefix}"
        matches = [i for i in self.exec_ids() if i.startswith(wanted)]
        if not matches:
            raise KitaruNotFoundError(f"Failed to load execution '{prefix}': no such execution.")
        if len(matches) > 1:
            shown = ", ".join(matches[:10]) + (" ..." if len(matches) > 10 else "")
            raise KitaruUsageError(
                f"Execution id prefix '{prefix}' is ambiguous: it matches {shown}."
            )
        return matches[0]

    def candidate_ids(self, *, status: str | None = None, flow: str | None = None) -> list[str]:
        """Execution ids that may match the filters, newest first (confirm with the state)."""
        if flow is not None:
            layout.validate_name("flow name", flow)
        if status is not None:
            layout.validate_name("status", status)
        if status is None and flow is None:
            return self.exec_ids()
        sets: list[list[str]] = []
        if flow is not None:
            sets.append(self.index.ids(self.index.flow_dir(flow)))
        if status is not None:
            # A change away from running or waiting does not fsync the new marker (swap_state):
            # after a power loss the old marker may be the only one, so those two small sets
            # are always read (a crashed "running" also reads as failed). Every candidate's
            # state is confirmed by the caller anyway.
            sources = dict.fromkeys([status, *ALWAYS_LISTED])
            found: set[str] = set()
            for name in sources:
                found.update(self.index.ids(self.index.status_dir(name)))
            sets.append(sorted(found, reverse=True))
        result = sets[0]
        for other in sets[1:]:
            keep = set(other)
            result = [i for i in result if i in keep]
        return result

    # -- locks ---------------------------------------------------------------------------------

    def exec_lock(self, exec_id: str, timeout: float = 30.0) -> FileLock:
        """The execution lock (taken around every change of a mutable record).

        An flock on the execution folder itself, which is never renamed: no lock file to make.
        """
        folder = self._folder(exec_id)
        return FileLock(folder, timeout=timeout, what="execution lock", folder=True)

    def runner_lock(self, exec_id: str, timeout: float = 0.5) -> FileLock:
        """The runner lock, held by the one live runner of an execution.

        The short default timeout rides out a reader's probe (a brief shared lock); a real
        runner holds the lock for as long as it lives.
        """
        lock_file = f"{self._folder(exec_id)}/runner.lock"
        return FileLock(lock_file, timeout=timeout, what="runner lock")

    def mark(self, folder: Path | str, exec_id: str, *, durable: bool = False) -> None:
        """Add ``exec_id``'s index marker in ``folder`` (a hard link to its ``runner.lock``)."""
        same_as = f"{self._folder(exec_id)}/runner.lock"
        self.index.add(folder, exec_id, durable=durable, same_as=same_as)

    def state_signature(self, exec_id: str) -> tuple[int, int, int]:
        """Changes whenever ``state.json`` is replaced (cheap: one ``stat``)."""
        info = os.stat(f"{self._folder(exec_id)}/state.json")
        return info.st_ino, info.st_mtime_ns, info.st_size

    def runner_alive(self, exec_id: str) -> bool:
        """True while some process holds the execution's runner lock."""
        return is_locked(f"{self._folder(exec_id)}/runner.lock")

    # -- executions ----------------------------------------------------------------------------

    def claim_execution_id(self) -> str:
        """Create a new execution folder with a fresh id (``mkdir`` claims it)."""
        ensure_dir(self._executions_dir)
        while True:
            exec_id = layout.new_execution_id()
            folder = f"{self._executions_dir}/{exec_id}"
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:
                continue
            os.chmod(folder, 0o700)
            return exec_id

    def create_execution(
        self,
        exec_id: str,
        spec: dict[str, Any],
        state: dict[str, Any],
        *,
        sync_now: bool = True,
    ) -> None:
        """Write a claimed execution's spec, first state and index markers.

        ``sync_now=False`` leaves the folder fsync that makes the new names durable to the
        execution's first durable write (a call or wait record creates its folder durably, a
        status change fsyncs the folder). For a run whose id nobody has been given yet: a
        power loss before then loses the execution whole or leaves an incomplete folder.
        """
        path = self._folder(exec_id)
        spec = {"schema_version": SCHEMA_VERSION, "exec_id": exec_id, **spec}
        state = {"schema_version": SCHEMA_VERSION, "exec_id": exec_id, **state}
        check_shape("spec", spec, f"{path}/execution.yaml")
        check_shape("state", state, f"{path}/state.json")
        flow = layout.validate_name("flow name", state["flow_name"])
        self.mark(self.index.flow_dir(flow), exec_id)
        self.mark(self.index.status_dir(state["status"]), exec_id)
        # state.json's rename makes the execution visible, so execution.yaml (read only after
        # it) is written in place; one directory fsync then makes both new names durable.
        durable = self.durable
        write_once(f"{path}/execution.yaml", dump_yaml(spec), durable=durable)
        write_atomic(f"{path}/state.json", dump_json(state), durable=durable, sync_dir=sync_now)

    def read_spec(self, exec_id: str) -> dict[str, Any]:
        """The execution's ``execution.yaml``."""
        path = self._require(exec_id) / "execution.yaml"
        try:
            return read_yaml_record(path, "spec")
        except FileNotFoundError:
            raise KitaruCorruptRecordError(path, "missing") from None

    def read_state(self, exec_id: str) -> dict[str, Any]:
        """The execution's ``state.json`` as stored."""
        path = self._require(exec_id) / "state.json"
        try:
            return read_json_record(path, "state")
        except FileNotFoundError:
            raise KitaruNotFoundError(
                f"Failed to load execution '{exec_id}': no such execution."
            ) from None

    @staticmethod
    def runner_exited_failure() -> dict[str, Any]:
        """The failure of a run (or call) whose runner process died."""
        return {
            "message": RUNNER_EXITED,
            "exception_type": None,
            "traceback": None,
            "origin": "runtime",
        }

    @classmethod
    def crashed_call(cls, call: dict[str, Any]) -> dict[str, Any]:
        """A call left ``running`` by a runner that died, read as failed (with that attempt)."""
        if call["status"] != "running":
            return call
        # A running view made from start lines knows its current attempt; a stored record
        # (format 1) began its next one.
        number = call.get("attempt") or len(call["attempts"]) + 1
        attempt = {
            "attempt_id": f"{call['call_id']}.{number}",
            "status": "failed",
            "started_at": call.get("attempt_started_at") or call.get("started_at"),
            "ended_at": None,
            "metadata": {},
            "failure": cls.runner_exited_failure(),
        }
        return {**call, "status": "failed", "attempts": [*call["attempts"], attempt]}

    def effective_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """Apply read-time status: ``running`` with no live runner is reported ``failed``."""
        if state["status"] == "running" and not self.runner_alive(state["exec_id"]):
            return {
                **state,
                "status": "failed",
                "status_reason": RUNNER_EXITED,
                "failure": state.get("failure") or self.runner_exited_failure(),
                "crashed": True,
            }
        return state

    def update_state(
        self,
        exec_id: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        expect: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Change ``state.json`` under the execution lock, as a compare-and-swap on status.

        ``mutate`` gets the current state and returns the new one (or changes it in place).
        If ``expect`` is given and the current status is not in it, ``KitaruStateError``.
        """
        path = self._state_file(exec_id)
        with self.exec_lock(exec_id):
            current = read_json_record(path, "state")
            if expect is not None and current["status"] not in set(expect):
                raise KitaruStateError(
                    f"Execution '{exec_id}' is currently '{current['status']}'; "
                    f"expected {' or '.join(sorted(expect))}."
                )
            new = mutate(dict(current)) or current
            return self.swap_state(exec_id, current, new)

    def request_cancel(self, exec_id: str) -> str:
        """Cancel, deciding under the execution lock; returns the status it leaves.

        A waiting execution is cancelled at once (its pending waits become ``aborted``); a
        running one gets ``cancel_requested``, which its runner looks for at every checkpoint
        boundary and when it opens a wait.
        """
        with self.exec_lock(exec_id):
            current = read_json_record(self._require(exec_id) / "state.json", "state")
            status = self.effective_state(current)["status"]
            if status == "running":
                self.swap_state(exec_id, current, {**current, "cancel_requested": True})
                return "running"
            if status != "waiting":
                raise KitaruStateError(
                    f"Execution '{exec_id}' is already {status}; only running or waiting "
                    "executions can be cancelled."
                )
            now = now_iso()
            for wait in self.list_waits(exec_id):
                if wait["status"] == "pending":
                    self.write_wait(exec_id, {**wait, "status": "aborted", "resolved_at": now})
            cancelled = {
                **current,
                "status": "cancelled",
                "status_reason": "cancelled by request",
                "cancel_requested": True,
                "ended_at": now,
            }
            self.swap_state(exec_id, current, cancelled)
            return "cancelled"

    def swap_state(
        self, exec_id: str, current: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        """Write ``new`` over ``current`` (caller holds the lock), moving index markers."""
        path = f"{self._folder(exec_id)}/state.json"
        new = {**new, "updated_at": now_iso()}
        check_shape("state", new, path)
        old_status, new_status = current["status"], new["status"]
        if new_status != old_status:
            # Leaving running or waiting, the new marker is not fsynced: a power loss may leave
            # only the old one, which filtered listings also read (see candidate_ids). Leaving
            # any other status (a retry of a failed run), it is made durable first.
            durable = self.durable and old_status not in ALWAYS_LISTED
            self.mark(self.index.status_dir(new_status), exec_id, durable=durable)
        write_json_record(path, new, durable=self.durable)
        if new_status != old_status:
            self.index.remove(self.index.status_dir(old_status), exec_id)
        return new

    @contextlib.contextmanager
    def locked(self, exec_id: str) -> Iterator[None]:
        """Hold the execution lock for a multi-record change."""
        with self.exec_lock(exec_id):
            yield

    # -- calls and waits -----------------------------------------------------------------------

    def _journal(self, exec_id: str, folder: str, kind: str) -> list[dict[str, Any]]:
        base = self._require(exec_id) / folder
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return []
        records = []
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            path = base / name
            try:
                records.append(read_json_record(path, kind))
            except FileNotFoundError:
                continue
            except KitaruCorruptRecordError:
                if path.stat().st_size:
                    raise
                # An empty file: a record written without fsync (durability fast, or a
                # format-1 "running" record) cut short by a power loss. The call runs again.
        records.sort(key=lambda r: r["seq"])
        return records

    def list_calls(self, exec_id: str) -> list[dict[str, Any]]:
        """The execution's checkpoint calls in journal order, running ones included.

        A call gets its record when it ends; until then ``started.jsonl`` shows it running.
        """
        records = self._journal(exec_id, "calls", "call")
        starts = self.read_starts(exec_id)
        if not starts:
            return records
        by_seq = {rec["seq"]: rec for rec in records}
        for seq, lines in starts.items():
            rec = by_seq.get(seq)
            if rec is not None and rec["status"] == "completed":
                continue
            done = len(rec["attempts"]) if rec else 0
            if rec is not None and rec["status"] == "running":
                done += 1  # a format-1 running record: an attempt that began (and crashed)
            inv = rec["invocation_id"] if rec else lines[-1]["invocation_id"]
            later = [
                line for line in lines if line["attempt"] > done and line["invocation_id"] == inv
            ]
            if later:
                by_seq[seq] = self._running_call(exec_id, later, rec)
        return [by_seq[seq] for seq in sorted(by_seq)]

    @classmethod
    def _running_call(
        cls, exec_id: str, lines: list[dict[str, Any]], rec: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The record a started call would have: running, with the attempts so far.

        ``lines`` are its start lines newer than ``rec``. Each but the last began an attempt
        that left no record: its runner died then.
        """
        first, last = lines[0], lines[-1]
        call_id = f"{exec_id}.c{last['seq']}"
        crashed = [
            {
                "attempt_id": f"{call_id}.{line['attempt']}",
                "status": "failed",
                "started_at": line["started_at"],
                "ended_at": None,
                "metadata": {},
                "failure": cls.runner_exited_failure(),
            }
            for line in lines[:-1]
        ]
        return {
            "schema_version": SCHEMA_VERSION,
            "seq": last["seq"],
            "call_id": call_id,
            "name": last["name"],
            "invocation_id": last["invocation_id"],
            "checkpoint_type": last.get("checkpoint_type"),
            "status": "running",
            "started_at": rec["started_at"] if rec else first["started_at"],
            "ended_at": None,
            "attempts": [*(cls.crashed_call(rec)["attempts"] if rec else []), *crashed],
            "artifacts": [],
            "metadata": dict(rec["metadata"]) if rec else {},
            "original_call_id": None,
            "cached_from": None,
            "parent_call_ids": [],
            # the attempt running now (read views only, never written)
            "attempt": last["attempt"],
            "attempt_started_at": last["started_at"],
        }

    def start_stream(self, exec_id: str) -> AppendStream:
        """``started.jsonl``, opened for the runner to append one line per call start."""
        return AppendStream(self.exec_dir(exec_id) / "started.jsonl")

    def read_starts(self, exec_id: str) -> dict[int, list[dict[str, Any]]]:
        """The well-formed start lines of each call in ``started.jsonl``, by attempt."""
        path = self.exec_dir(exec_id) / "started.jsonl"
        try:
            raw = read_bytes(path, limit=_MAX_STARTS)
        except (FileNotFoundError, KitaruCorruptRecordError):
            return {}  # not a regular file, or too large: doctor reports it; the records stand
        attempts: dict[int, dict[int, dict[str, Any]]] = {}
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            # Start lines only say what is running; a damaged one (doctor reports it) must not
            # make the execution unreadable, so it is skipped and the records stand.
            if start_line_problem(entry) is None:
                attempts.setdefault(entry["seq"], {})[entry["attempt"]] = entry
        return {seq: [by[n] for n in sorted(by)] for seq, by in attempts.items()}

    def list_waits(self, exec_id: str) -> list[dict[str, Any]]:
        """The execution's wait records, in journal order."""
        return self._journal(exec_id, "waits", "wait")

    def read_call(self, exec_id: str, seq: int) -> dict[str, Any] | None:
        """The call record at journal position ``seq``, or None."""
        base = self._require(exec_id) / "calls"
        prefix = f"{seq:04d}-"
        try:
            names = [n for n in os.listdir(base) if n.startswith(prefix) and n.endswith(".json")]
        except FileNotFoundError:
            return None
        for name in names:
            try:
                record = read_json_record(base / name, "call")
            except FileNotFoundError:
                continue
            if record["seq"] == seq:
                return record
        return None

    def read_call_file(self, exec_id: str, seq: int, invocation_id: str) -> dict[str, Any] | None:
        """The call record ``calls/<seq>-<invocation_id>.json``, or None if there is none."""
        layout.validate_name("invocation id", invocation_id)
        path = f"{self._folder(exec_id)}/calls/{_seq_name(seq, invocation_id)}"
        try:
            return read_json_record(path, "call")
        except FileNotFoundError:
            return None

    def _write_record(self, exec_id: str, folder: str, kind: str, record: dict[str, Any]) -> None:
        record = {"schema_version": SCHEMA_VERSION, **record}
        name = _seq_name(
            record["seq"], layout.validate_name("invocation id", record["invocation_id"])
        )
        path = f"{self._folder(exec_id, folder)}/{name}"
        check_shape(kind, record, path)
        write_json_record(path, record, durable=self.durable)

    def write_call(self, exec_id: str, record: dict[str, Any]) -> None:
        """Write a checkpoint call record (caller holds the execution lock or owns the run)."""
        self._write_record(exec_id, "calls", "call", record)

    def write_wait(self, exec_id: str, record: dict[str, Any]) -> None:
        """Write a wait record (caller holds the execution lock)."""
        self._write_record(exec_id, "waits", "wait", record)

    # -- logs ----------------------------------------------------------------------------------

    def append_log(self, exec_id: str, entry: dict[str, Any]) -> None:
        """Append one log entry as one JSON line (oversized messages are truncated)."""
        line = orjson.dumps(entry)
        if len(line) >= MAX_LINE:
            message = str(entry.get("message", ""))
            room = max(0, len(message) - (len(line) - MAX_LINE) - 64)
            entry = {**entry, "message": message[:room] + " ... [truncated]"}
            line = orjson.dumps(entry)
        append_line(self.exec_dir(exec_id) / "logs.jsonl", line)

    def read_logs(self, exec_id: str) -> list[dict[str, Any]]:
        """Every log entry; a torn last line is skipped."""
        path = self._require(exec_id) / "logs.jsonl"
        try:
            raw = read_bytes(path, limit=1 << 34)
        except FileNotFoundError:
            return []
        lines = raw.split(b"\n")
        out = []
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                if number == len(lines) - 1 or is_torn_line(line):
                    continue  # cut off by a crash while appending
                raise KitaruCorruptRecordError(path, f"invalid JSON on line {number + 1}") from None
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def open_runner_err(self, exec_id: str) -> int:
        """A descriptor on a fresh ``runner.err``, for a starting runner's stderr stream."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(self.exec_dir(exec_id) / "runner.err", flags, 0o600)

    def drop_runner_err(self, exec_id: str) -> None:
        """Remove an empty ``runner.err`` once the runner has started the flow."""
        path = self.exec_dir(exec_id) / "runner.err"
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size == 0:
                path.unlink()

    def write_runner_err(self, exec_id: str, text: str) -> None:
        """Keep a failed detached runner's stderr."""
        write_atomic(self.exec_dir(exec_id) / "runner.err", text.encode(), durable=self.durable)

    # -- values and cache ----------------------------------------------------------------------

    def encode(self, value: Any) -> dict[str, Any]:
        """Encode a value for a record (inline or as a blob)."""
        return encode_value(value, self.blobs)

    def decode(self, ref: dict[str, Any]) -> Any:
        """Decode a value reference."""
        return decode_value(ref, self.blobs)

    def cache_path(self, key: str) -> Path:
        """Where the cache entry for ``key`` (hex digest) lives."""
        return Path(self._cache_file(key))

    def _cache_file(self, key: str) -> str:
        # 8-128 lowercase hex digits (checked without a regex: this runs at every checkpoint).
        if not isinstance(key, str) or not 8 <= len(key) <= 128 or key.strip(_HEX_DIGITS):
            raise KitaruUsageError(f"Invalid cache key {key!r}.")
        return f"{self._cache_dir}/{key}"

    def cache_get(self, key: str) -> tuple[str, int, str] | None:
        """The call that produced ``key``'s output as ``(exec_id, seq, invocation_id)``.

        The entry is a hard link to that call's record, so it names the call itself. None on a
        miss; a malformed entry is only a miss (the caller still checks the call's own record).
        """
        path = self._cache_file(key)
        if not os.access(path, os.F_OK, follow_symlinks=False):
            return None  # the common miss, without raising and catching an exception
        try:
            record = read_json_record(path, "call")
            exec_id, seq, _ = layout.parse_sub_id("call id", record["call_id"], "c")
            invocation_id = layout.validate_name("invocation id", record["invocation_id"])
        except (FileNotFoundError, KitaruCorruptRecordError, KitaruUsageError):
            return None
        return exec_id, seq, invocation_id

    def cache_put(self, key: str, exec_id: str, seq: int, invocation_id: str) -> bool:
        """Record that call ``seq`` of ``exec_id`` produced the output for ``key``.

        The entry is a hard link to the call's (completed, never rewritten) record: one
        ``link`` call, which allocates nothing and is atomic. Not fsynced, and a failure (a
        file system without hard links) is ignored: the cache is an optimisation, and a lost
        entry is only a miss. An existing entry is replaced atomically. True if it was stored.
        """
        layout.validate_name("invocation id", invocation_id)
        path = self._cache_file(key)
        record = f"{self._folder(exec_id)}/calls/{_seq_name(seq, invocation_id)}"
        try:
            try:
                os.link(record, path, follow_symlinks=False)
            except FileExistsError:
                tmp = f"{self._cache_dir}/.{key}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
                os.link(record, tmp, follow_symlinks=False)
                try:
                    os.replace(tmp, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)  # left when rename fails or both names are one file
        except OSError:
            return False
        return True

    def legacy_cache_folders(self) -> list[str]:
        """Format-1 cache folders (``cache/<aa>/``) still present.

        None when ``cache`` is not a real folder: a symlink there is never followed.
        """
        try:
            if not stat.S_ISDIR(os.lstat(self._cache_dir).st_mode):
                return []
            entries = list(os.scandir(self._cache_dir))
        except OSError:
            return []
        return sorted(
            e.path
            for e in entries
            if _LEGACY_FAN.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
        )

    def convert_legacy_cache(self) -> int:
        """Turn format-1 cache records into entries; return how many were kept.

        Only ``cache/<aa>/<62 hex>.json`` regular files are read and removed; entries whose call
        is gone are dropped (the cache is derived data). A folder that vanished (another
        process converting it) or cannot be read is skipped and reported by doctor.
        """
        converted = 0
        for fan in self.legacy_cache_folders():
            try:
                entries = list(os.scandir(fan))
            except OSError:
                continue
            for entry in entries:
                if _LEGACY_ENTRY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    key = os.path.basename(fan) + entry.name[: -len(".json")]
                    converted += self._convert_legacy_entry(key, entry.path)
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
            with contextlib.suppress(OSError):
                os.rmdir(fan)
        return converted

    def _convert_legacy_entry(self, key: str, path: str) -> int:
        try:
            record = read_json_record(path, "cache")
            exec_id, seq, _ = layout.parse_sub_id("call id", record["call_id"], "c")
            call = self.read_call(exec_id, seq)
        except (KitaruCorruptRecordError, KitaruUsageError, KitaruNotFoundError, OSError):
            return 0
        if call is None:
            return 0
        if os.path.lexists(self._cache_file(key)):
            return 1
        return int(self.cache_put(key, exec_id, seq, call["invocation_id"]))

    # -- misc ----------------------------------------------------------------------------------

    @staticmethod
    def runner_info() -> dict[str, Any]:
        """Who is running: recorded in ``state.json`` while a runner works."""
        return {"pid": os.getpid(), "host": os.uname().nodename, "started_at": now_iso()}

    def remove_tree(self, path: Path) -> None:
        """Delete a folder inside the store without following symlinks."""
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise KitaruUsageError(f"Refusing to delete {path}: outside the store.")
        import shutil

        shutil.rmtree(path)
