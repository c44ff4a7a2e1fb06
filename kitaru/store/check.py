"""``kitaru doctor``: verify every record, blob and index entry of a store (like ``git fsck``).

Errors are damage a reader can trip over: an unparseable or schema-invalid record, a dangling
blob reference, a blob whose content does not match its name, an index marker that contradicts
``state.json``, a corrupt line in the middle of ``logs.jsonl``. Warnings are leftovers that do
no harm: temp files, orphan blobs, a torn last log line, a crashed runner, stale or missing
index markers, unsafe permissions, symlinks, a network file system.

With ``fix=True`` only what is safe is repaired: temp files whose writer is gone, orphan blobs
(only when every record could be read, and not freshly written), cache entries whose call is
gone, and index markers (rebuilt from each ``state.json`` under the execution lock). Every
problem stays in the report, with ``"fixed": True`` when it was repaired; ``errors`` and
``warnings`` count only the problems that remain.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kitaru.errors import KitaruCorruptRecordError, KitaruError
from kitaru.store import layout
from kitaru.store.atomic import is_temp_name, is_torn_line, read_bytes
from kitaru.store.objects import BlobStore
from kitaru.store.records import load_json, load_yaml, read_json_record, read_yaml_record
from kitaru.store.store import FORMAT, Store, start_line_problem

__all__ = ["FIX_GRACE_SECONDS", "check_store"]

#: Temp files of a live writer and orphan blobs younger than this are never removed: they may
#: belong to a write in progress (a blob is written just before the record naming it).
FIX_GRACE_SECONDS = 60.0

_NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre"}
_LOCAL_FUSE = {"fuse.fuse-overlayfs", "fuse.lxcfs"}
_LOCK_TIMEOUT = 5.0


@dataclass
class _Report:
    """Problems found so far, plus what the scan learned about the store."""

    root: Path
    problems: list[dict[str, Any]] = field(default_factory=list)
    blobs: set[str] = field(default_factory=set)  # digests present in objects/
    refs: set[str] = field(default_factory=set)  # digests any record names
    calls: dict[str, set[int]] = field(default_factory=dict)  # exec id -> call seqs
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # exec id -> stored state
    exec_dirs: set[str] = field(default_factory=set)
    unreadable: int = 0  # records that could not be read (their blob refs are unknown)
    temp_files: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    fix: bool = False  # repair what is safe as it is found

    def add(
        self, severity: str, code: str, path: Path, message: str, fix: str | None = None
    ) -> dict[str, Any]:
        """Record one problem and return it (so a fix can mark it)."""
        rel = path.relative_to(self.root).as_posix() if path != self.root else "."
        problem = {
            "severity": severity,
            "code": code,
            "path": rel,
            "message": message,
            "fix": fix,
            "fixed": False,
        }
        self.problems.append(problem)
        return problem


def check_store(store: Store, *, fix: bool = False, grace: float = FIX_GRACE_SECONDS) -> dict:
    """Check a store's records, blobs, cache and index; optionally repair what is safe.

    Args:
        store: The opened store.
        fix: Remove leftover temp files, orphan blobs and cache entries whose call is gone,
            and rebuild the index from each execution's stored ``state.json``.
        grace: Age in seconds below which an orphan blob, or a temp file whose writer process
            is alive, is left alone by ``fix`` (it may belong to a write in progress).

    Returns:
        ``{"ok", "errors", "warnings", "fixed", "problems"}``. ``ok`` is true when no error
        remains. Each problem has ``severity`` (``error`` or ``warning``), ``code``, ``path``
        (relative to the store root), ``message``, ``fix`` (a suggested remedy or None) and
        ``fixed`` (true when ``fix=True`` repaired it); ``errors`` and ``warnings`` count the
        problems not fixed.
    """
    report = _Report(store.root, fix=fix)
    _walk(store.root, report)
    _check_top_records(store, report)
    _check_filesystem(store.root, report)
    _check_executions(store, report)
    _check_blobs(store, report)
    _report_orphans(report)
    _check_cache(store, report, fix=fix)
    _check_index(store, report, fix=fix, grace=grace)
    if fix:
        _fix_temp_files(report, grace)
        _fix_orphan_blobs(store, report, grace)
    return _summary(report)


def _summary(report: _Report) -> dict[str, Any]:
    remaining = [p for p in report.problems if not p["fixed"]]
    errors = sum(1 for p in remaining if p["severity"] == "error")
    return {
        "ok": errors == 0,
        "errors": errors,
        "warnings": len(remaining) - errors,
        "fixed": len(report.problems) - len(remaining),
        "problems": report.problems,
    }


# -- the tree: temp files, symlinks, permissions ------------------------------------------------


def _walk(root: Path, report: _Report) -> None:
    """One pass over every entry: temp files, symlinks, group/world-writable entries."""
    _check_mode(root, os.stat(root), report)  # the folder itself, even through a symlink
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue  # removed since it was listed (an upgrade or a fix running meanwhile)
        except OSError as exc:
            report.add("error", "unreadable", folder, f"cannot list folder: {exc.strerror}")
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                report.add(
                    "warning",
                    "symlink",
                    path,
                    "symlink inside the store (never followed)",
                    f"remove it: rm {path}",
                )
                continue
            try:
                _check_mode(path, entry.stat(follow_symlinks=False), report)
            except FileNotFoundError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(path)
            elif is_temp_name(entry.name):
                problem = report.add(
                    "warning",
                    "temp_file",
                    path,
                    "leftover temp file of an interrupted write",
                    "kitaru doctor --fix",
                )
                report.temp_files.append((path, problem))


def _check_mode(path: Path, info: os.stat_result, report: _Report) -> None:
    if info.st_mode & 0o022:
        kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
        report.add(
            "warning",
            "writable_by_others",
            path,
            f"{kind} is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})",
            f"chmod go-w {path}",
        )


def _check_filesystem(root: Path, report: _Report) -> None:
    """Warn when the store is on a network or FUSE file system (best effort, Linux only)."""
    fstype = _fs_type(root)
    if fstype is None:
        return
    if fstype in _NETWORK_FS or (fstype.startswith("fuse") and fstype not in _LOCAL_FUSE):
        report.add(
            "warning",
            "network_filesystem",
            root,
            f"the store is on a {fstype} file system: locks and appends are not reliable there",
            "move the project to a local disk",
        )


def _fs_type(root: Path) -> str | None:
    try:
        text = Path("/proc/self/mounts").read_text(errors="replace")
    except OSError:
        return None
    target = os.path.realpath(root)
    best, best_type = "", None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, parts[2]
    return best_type


# -- top-level records -------------------------------------------------------------------------


def _check_top_records(store: Store, report: _Report) -> None:
    """``format.json`` and ``config.yaml``."""
    path = store.root / "format.json"
    try:
        data = load_json(read_bytes(path), path)
        fmt = data.get("format") if isinstance(data, dict) else None
        if type(fmt) is not int or not 1 <= fmt <= FORMAT:
            raise KitaruCorruptRecordError(path, f"unsupported or missing format {fmt!r}")
        if fmt < FORMAT:
            problem = report.add(
                "warning",
                "old_format",
                path,
                f"store format {fmt}: upgraded to {FORMAT} by the next run",
                "kitaru doctor --fix",
            )
            if report.fix:
                store.upgrade()
                problem["fixed"] = store.format == FORMAT
    except FileNotFoundError:
        report.add("error", "missing_record", path, "format.json is missing")
    except KitaruCorruptRecordError as exc:
        report.add("error", "corrupt_record", path, exc.reason)
    path = store.root / "config.yaml"
    try:
        data = load_yaml(read_bytes(path), path)
        if not isinstance(data, dict):
            raise KitaruCorruptRecordError(path, "expected a mapping")
        version = data.get("schema_version", 1)
        if type(version) is not int or version > 1:
            raise KitaruCorruptRecordError(path, f"unsupported schema_version {version!r}")
    except FileNotFoundError:
        pass  # defaults apply
    except KitaruCorruptRecordError as exc:
        report.add("error", "corrupt_record", path, exc.reason)


# -- executions --------------------------------------------------------------------------------


def _check_executions(store: Store, report: _Report) -> None:
    """Every execution folder: its records, their blob references and its log."""
    base = store.root / "executions"
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return
    for entry in entries:
        if is_temp_name(entry.name) or entry.is_symlink():
            continue  # reported by the walk
        path = Path(entry.path)
        if not entry.is_dir(follow_symlinks=False) or not _valid_exec_id(entry.name):
            report.add("warning", "unexpected_entry", path, "not an execution folder")
            continue
        report.exec_dirs.add(entry.name)
        _check_execution(store, entry.name, path, report)


def _valid_exec_id(name: str) -> bool:
    try:
        layout.validate_name("execution id", name)
    except KitaruError:
        return False
    return name.startswith("kr-")


def _check_execution(store: Store, exec_id: str, path: Path, report: _Report) -> None:
    state_path = path / "state.json"
    if not state_path.exists():
        report.add(
            "warning",
            "incomplete_execution",
            path,
            "execution folder without state.json (creation did not finish)",
            f"inspect it, then remove it: rm -r {path}",
        )
        return
    state = _read_record(state_path, "state", report)
    if state is not None:
        if state["exec_id"] != exec_id:
            report.add(
                "error",
                "record_mismatch",
                state_path,
                f"exec_id {state['exec_id']!r} does not match its folder",
            )
        else:
            report.states[exec_id] = state
        if state["status"] == "running" and not _runner_alive(store, exec_id, report):
            report.add(
                "warning",
                "crashed_runner",
                state_path,
                "state is 'running' but no runner holds runner.lock (the runner process "
                "exited; the execution reads as failed)",
                f"kitaru executions retry {exec_id}",
            )
    spec_path = path / "execution.yaml"
    if spec_path.exists() or spec_path.is_symlink():
        _read_record(spec_path, "spec", report, yaml=True)
    else:
        report.add("error", "missing_record", spec_path, "execution.yaml is missing")
        report.unreadable += 1
    seqs = _check_journal(path / "calls", "call", report)
    report.calls[exec_id] = seqs
    _check_journal(path / "waits", "wait", report)
    _check_log(path / "logs.jsonl", report)
    _check_log(path / "started.jsonl", report, line_problem=start_line_problem)


def _runner_alive(store: Store, exec_id: str, report: _Report) -> bool:
    try:
        return store.runner_alive(exec_id)
    except KitaruCorruptRecordError as exc:
        report.add("error", "corrupt_record", Path(exc.path), exc.reason, "remove it")
        return True  # unknown: do not also call it crashed


def _read_record(path: Path, kind: str, report: _Report, *, yaml: bool = False) -> dict | None:
    """Read and shape-check one record; collect its blob references; report damage."""
    try:
        data = read_yaml_record(path, kind) if yaml else read_json_record(path, kind)
    except FileNotFoundError:
        return None  # removed since the listing
    except KitaruCorruptRecordError as exc:
        report.unreadable += 1
        report.add(
            "error",
            "corrupt_record",
            path,
            exc.reason,
            "restore it from a backup or remove the execution",
        )
        return None
    _check_refs(data, path, report)
    return data


def _check_journal(folder: Path, kind: str, report: _Report) -> set[int]:
    """Read every call or wait record in ``folder``; return their sequence numbers."""
    seqs: set[int] = set()
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return seqs
    for name in names:
        if name.startswith(".") or not name.endswith(".json"):
            continue
        path = folder / name
        prefix = name.partition("-")[0]
        if _empty_record(path, report):
            continue
        if prefix.isdigit():
            seqs.add(int(prefix))  # present even if unreadable: its cache entries stay
        record = _read_record(path, kind, report)
        if record is None:
            continue
        expected = f"{record['seq']:04d}-{record['invocation_id']}.json"
        if name != expected:
            report.add(
                "error",
                "record_mismatch",
                path,
                f"file name does not match its seq and invocation_id ({expected})",
            )
        seqs.add(record["seq"])
    return seqs


def _empty_record(path: Path, report: _Report) -> bool:
    """An empty record: one written without fsync (durability fast, or a format-1 running
    record) and cut short by a power loss."""
    try:
        if path.stat().st_size:
            return False
    except FileNotFoundError:
        return True
    problem = report.add(
        "warning",
        "empty_record",
        path,
        "empty record of an interrupted call (readers ignore it; the call runs again)",
        "kitaru doctor --fix",
    )
    if report.fix:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        problem["fixed"] = True
    return True


def _check_refs(data: Any, path: Path, report: _Report) -> None:
    """Collect every blob a record names; a value reference to a missing blob is an error."""
    for ref in _iter_blob_refs(data):
        digest = ref["blob"]
        report.refs.add(digest)
        if "codec" not in ref:
            continue  # a user dict that happens to have a "blob" key, not a value reference
        try:
            blob_path = _blob_path(report.root, digest)
        except KitaruCorruptRecordError:
            report.add("error", "invalid_reference", path, f"invalid blob id {digest!r}")
            continue
        if not blob_path.is_file():
            report.add(
                "error", "dangling_reference", path, f"refers to blob {digest} which is missing"
            )


def _iter_blob_refs(data: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Every dict below ``data`` with a string ``blob`` key (depth-capped)."""
    found: list[dict[str, Any]] = []
    stack = [(data, depth)]
    while stack:
        item, level = stack.pop()
        if level > 256:
            continue
        if isinstance(item, dict):
            if isinstance(item.get("blob"), str):
                found.append(item)
            stack.extend((value, level + 1) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, level + 1) for value in item)
    return found


def _blob_path(root: Path, digest: str) -> Path:
    return BlobStore(root / "objects").path(digest)


def _check_log(
    path: Path, report: _Report, *, line_problem: Callable[[Any], str | None] | None = None
) -> None:
    """Only the last line of an append-only stream may be torn; anything else is corruption.

    ``line_problem`` checks the shape of each parsed line (for ``started.jsonl``).
    """
    try:
        raw = read_bytes(path, limit=1 << 34)
    except FileNotFoundError:
        return
    except KitaruCorruptRecordError as exc:
        report.add("error", "corrupt_record", path, exc.reason)
        return
    lines = raw.split(b"\n")
    offset = 0
    for number, line in enumerate(lines):
        last = number == len(lines) - 1
        if not line.strip():
            offset += len(line) + 1
            continue
        entry = _parse_line(line)
        problem = line_problem(entry) if line_problem and entry is not _INVALID else None
        if problem:
            report.add("error", "corrupt_log_line", path, f"line {number + 1}: {problem}")
        if entry is _INVALID:
            if last or is_torn_line(line):
                report.add(
                    "warning",
                    "torn_log_line",
                    path,
                    f"torn line at byte {offset} (a crash while appending; skipped by readers)",
                )
            else:
                report.add(
                    "error",
                    "corrupt_log_line",
                    path,
                    f"invalid JSON on line {number + 1} (byte {offset})",
                )
        offset += len(line) + 1


_INVALID = object()


def _parse_line(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return _INVALID


# -- blobs -------------------------------------------------------------------------------------


def _check_blobs(store: Store, report: _Report) -> None:
    """Re-hash every blob; note which exist (for dangling and orphan checks)."""
    base = store.root / "objects"
    try:
        fans = list(os.scandir(base))
    except FileNotFoundError:
        return
    for fan in fans:
        if fan.is_symlink() or is_temp_name(fan.name):
            continue
        if not fan.is_dir(follow_symlinks=False) or not _is_hex(fan.name, 2):
            report.add("warning", "unexpected_entry", Path(fan.path), "not a blob folder")
            continue
        for entry in os.scandir(fan.path):
            if entry.is_symlink() or is_temp_name(entry.name):
                continue
            _check_blob(Path(entry.path), fan.name + entry.name, report)


def _check_blob(path: Path, digest: str, report: _Report) -> None:
    if not path.is_file() or not _is_hex(digest, 64):
        report.add("warning", "unexpected_entry", path, "not a blob")
        return
    try:
        data = read_bytes(path, limit=1 << 40)
    except (FileNotFoundError, KitaruCorruptRecordError):
        report.add("error", "unreadable_blob", path, "cannot read blob")
        return
    report.blobs.add(digest)
    if hashlib.sha256(data).hexdigest() != digest:
        report.add(
            "error", "blob_hash_mismatch", path, "blob content does not match its sha256 name"
        )


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)


def _orphan_blobs(report: _Report) -> list[str]:
    return sorted(report.blobs - report.refs)


def _fix_orphan_blobs(store: Store, report: _Report, grace: float) -> None:
    """Remove orphan blobs, unless some record was unreadable (its refs are unknown) or a
    runner is live (a checkpoint writes its blobs before the record that names them)."""
    if report.unreadable or any(store.runner_alive(i) for i in store.exec_ids()):
        return
    now = time.time()
    for problem in report.problems:
        if problem["code"] != "orphan_blob":
            continue
        path = store.root / problem["path"]
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime < grace:
                continue
            os.unlink(path)
        problem["fixed"] = True


def _report_orphans(report: _Report) -> None:
    for digest in _orphan_blobs(report):
        report.add(
            "warning",
            "orphan_blob",
            _blob_path(report.root, digest),
            "blob not referenced by any record (left by an interrupted write)",
            "kitaru doctor --fix",
        )


# -- cache -------------------------------------------------------------------------------------


def _check_cache(store: Store, report: _Report, *, fix: bool) -> None:
    """Every cache entry must be a hard link to (or a copy of) an existing call record."""
    base = store.root / "cache"
    try:
        if not stat.S_ISDIR(os.lstat(base).st_mode):
            return  # a symlink (never followed) or a file: reported by the walk
        entries = list(os.scandir(base))
    except OSError:
        return
    legacy = store.legacy_cache_folders()
    if legacy:
        _report_legacy_cache(store, base, len(legacy), report)
    for entry in entries:
        if is_temp_name(entry.name) or entry.is_symlink() or entry.is_dir(follow_symlinks=False):
            continue  # temp files and symlinks are reported by the walk
        _check_cache_entry(store, Path(entry.path), report, fix=fix)


def _report_legacy_cache(store: Store, base: Path, count: int, report: _Report) -> None:
    problem = report.add(
        "warning",
        "legacy_cache",
        base,
        f"{count} format-1 cache folder(s) (cache/<aa>/); converted by the next run",
        "kitaru doctor --fix",
    )
    if report.fix:
        store.convert_legacy_cache()
        problem["fixed"] = not store.legacy_cache_folders()


def _check_cache_entry(store: Store, path: Path, report: _Report, *, fix: bool) -> None:
    """An entry is a hard link to (or a copy of) the record of the call that produced it."""
    try:
        store.cache_path(path.name)
        record = read_json_record(path, "call")
        exec_id, seq, _ = layout.parse_sub_id("call id", record["call_id"], "c")
    except FileNotFoundError:
        return
    except KitaruError as exc:
        # Cache entries are derived and not fsynced: a bad one is only a miss.
        reason = exc.reason if isinstance(exc, KitaruCorruptRecordError) else str(exc)
        _drop_cache_entry(path, "bad_cache_entry", f"unusable cache entry ({reason})", report, fix)
        return
    if seq not in report.calls.get(exec_id, ()):
        message = f"cache entry names call {record['call_id']}, which is gone"
        _drop_cache_entry(path, "stale_cache_entry", message, report, fix)


def _drop_cache_entry(path: Path, code: str, message: str, report: _Report, fix: bool) -> None:
    problem = report.add("warning", code, path, message, "kitaru doctor --fix")
    if fix:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        problem["fixed"] = True


# -- index -------------------------------------------------------------------------------------


def _check_index(store: Store, report: _Report, *, fix: bool, grace: float) -> None:
    """Compare index markers with each execution's stored status and flow."""
    markers: dict[str, set[tuple[str, str]]] = {}
    for kind, value, exec_id in store.index.all_markers():
        markers.setdefault(exec_id, set()).add((kind, value))
    for exec_id in sorted(set(markers) | set(report.states)):
        found = markers.get(exec_id, set())
        problems = _index_problems(store, exec_id, found, report)
        if fix and problems:
            _fix_index(store, exec_id, found, problems, grace)


def _index_problems(
    store: Store, exec_id: str, found: set[tuple[str, str]], report: _Report
) -> list[dict[str, Any]]:
    """Problems with one execution's markers (re-checked under its lock if they contradict)."""
    state = report.states.get(exec_id)
    if state is None:
        if exec_id in report.exec_dirs and not (store.exec_dir(exec_id) / "state.json").exists():
            why = "has no state.json yet"
        elif exec_id in report.exec_dirs:
            return []  # its state.json is corrupt, already reported
        else:
            why = "does not exist"
        return [
            report.add(
                "warning",
                "orphan_marker",
                _marker_path(store, kind, value, exec_id),
                f"index marker for an execution that {why}",
                "kitaru doctor --fix",
            )
            for kind, value in sorted(found)
        ]
    diff = _marker_diff(state, found)
    if any(_contradicts(kind, diff) for kind in ("status", "flow")):
        state, found = _recheck(store, exec_id, state, found)
        diff = _marker_diff(state, found)
    return _report_diff(store, exec_id, diff, report)


def _marker_diff(state: dict[str, Any], found: set[tuple[str, str]]) -> dict[str, Any]:
    wanted = {("status", state["status"]), ("flow", state["flow_name"])}
    return {"missing": sorted(wanted - found), "extra": sorted(found - wanted)}


# Filtered listings also read these status markers (see Store.candidate_ids), so an execution
# marked only with one of them is still listed correctly.
_ALWAYS_READ = {"running", "waiting"}


def _contradicts(kind: str, diff: dict[str, Any]) -> bool:
    """The right marker of ``kind`` is missing while one for another value exists, and a
    filtered listing would therefore miss or misreport the execution."""
    missing = any(k == kind for k, _ in diff["missing"])
    others = {value for k, value in diff["extra"] if k == kind}
    if kind == "status":
        others -= _ALWAYS_READ
    return missing and bool(others)


def _recheck(
    store: Store, exec_id: str, state: dict[str, Any], found: set[tuple[str, str]]
) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """Re-read state and markers under the execution lock (a status change may be in flight)."""
    try:
        with store.exec_lock(exec_id, timeout=_LOCK_TIMEOUT):
            state = read_json_record(store.exec_dir(exec_id) / "state.json", "state")
            found = _present_markers(store, exec_id, found | _wanted(state))
    except (KitaruError, FileNotFoundError):
        pass
    return state, found


def _wanted(state: dict[str, Any]) -> set[tuple[str, str]]:
    return {("status", state["status"]), ("flow", state["flow_name"])}


def _present_markers(
    store: Store, exec_id: str, candidates: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    return {m for m in candidates if _marker_path(store, *m, exec_id).exists()}


def _marker_path(store: Store, kind: str, value: str, exec_id: str) -> Path:
    return store.index.root / kind / value / exec_id


def _report_diff(
    store: Store, exec_id: str, diff: dict[str, Any], report: _Report
) -> list[dict[str, Any]]:
    out = []
    for kind, value in diff["missing"]:
        path = _marker_path(store, kind, value, exec_id)
        if _contradicts(kind, diff):
            out.append(
                report.add(
                    "error",
                    "index_contradicts_state",
                    path,
                    f"state.json says {kind} {value!r} but the index marks another {kind} "
                    "(filtered listings would miss or misreport this execution)",
                    "kitaru doctor --fix",
                )
            )
        else:
            out.append(
                report.add(
                    "warning",
                    "index_missing_marker",
                    path,
                    f"no index marker for {kind} {value!r}",
                    "kitaru doctor --fix",
                )
            )
    for kind, value in diff["extra"]:
        path = _marker_path(store, kind, value, exec_id)
        if not _contradicts(kind, diff):
            out.append(
                report.add(
                    "warning",
                    "index_stale_marker",
                    path,
                    f"stale index marker: state.json has another {kind}",
                    "kitaru doctor --fix",
                )
            )
    return out


def _fix_index(
    store: Store,
    exec_id: str,
    found: set[tuple[str, str]],
    problems: list[dict[str, Any]],
    grace: float,
) -> None:
    """Rebuild one execution's markers from its stored state, under its execution lock.

    Markers of an execution without ``state.json`` are removed only once its folder is older
    than ``grace`` (``create_execution`` writes the markers just before the state).
    """
    exec_dir = store.root / "executions" / exec_id
    if not (exec_dir / "state.json").exists():
        with contextlib.suppress(FileNotFoundError):
            if time.time() - exec_dir.stat().st_mtime < grace:
                return  # possibly being created right now
        for kind, value in found:
            store.index.remove(store.index.root / kind / value, exec_id)
        _mark_fixed(problems)
        return
    try:
        with store.exec_lock(exec_id, timeout=_LOCK_TIMEOUT):
            state = read_json_record(exec_dir / "state.json", "state")
            wanted = _wanted(state)
            for kind, value in wanted:
                store.mark(store.index.root / kind / value, exec_id)
            for kind, value in _present_markers(store, exec_id, found) - wanted:
                store.index.remove(store.index.root / kind / value, exec_id)
    except (KitaruError, FileNotFoundError):
        return
    _mark_fixed(problems)


def _mark_fixed(problems: list[dict[str, Any]]) -> None:
    for problem in problems:
        problem["fixed"] = True


# -- temp files --------------------------------------------------------------------------------


def _fix_temp_files(report: _Report, grace: float) -> None:
    """Remove leftover temp files whose writer is gone (or that are older than ``grace``)."""
    now = time.time()
    for path, problem in report.temp_files:
        try:
            young = now - path.stat().st_mtime < grace
            if young and _pid_alive(_temp_pid(path.name)):
                continue
            os.unlink(path)
        except FileNotFoundError:
            pass
        problem["fixed"] = True


def _temp_pid(name: str) -> int | None:
    parts = name.split(".")
    # ".<name>.<pid>.<hex>.tmp" -> [..., "<pid>", "<hex>", "tmp"]
    return int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return True  # unknown writer: assume it may be alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
