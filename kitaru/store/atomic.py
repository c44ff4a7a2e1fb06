"""The one write primitive, the one append primitive, and capped reads.

A record is replaced by writing a temp file beside it, fsyncing it, renaming it over the old
name and fsyncing the directory (git's lockfile protocol plus the directory fsync SQLite does).
Readers take no lock: they see the old or the new record, never a mix.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import sys
from pathlib import Path

from kitaru.errors import KitaruBackendError, KitaruCorruptRecordError

__all__ = [
    "AppendStream",
    "FILE_MODE",
    "DIR_MODE",
    "MAX_LINE",
    "MAX_RECORD",
    "append_line",
    "create_marker",
    "ensure_dir",
    "fsync_dir",
    "is_temp_name",
    "is_torn_line",
    "read_bytes",
    "write_atomic",
    "write_new",
    "write_once",
]

FILE_MODE = 0o600
DIR_MODE = 0o700
MAX_RECORD = 16 * 1024 * 1024
MAX_LINE = 64 * 1024
TEMP_SUFFIX = ".tmp"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
# Temp names only need to be unique among this process's writers (the pid covers the rest).
_temp_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_pid = os.getpid()


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def _fsync(fd: int) -> None:
    # On macOS fsync does not flush the drive cache; only F_FULLFSYNC does.
    if sys.platform == "darwin":
        import fcntl

        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
    else:
        os.fsync(fd)


def fsync_dir(path: Path | str) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def is_temp_name(name: str) -> bool:
    """True for the temp files ``write_atomic`` leaves behind if it is killed."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def ensure_dir(path: Path | str, *, durable: bool = False) -> None:
    """Create ``path`` (and parents) as 0700, whatever the umask."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.fspath(path)) or "."
    ensure_dir(parent, durable=durable)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    os.chmod(path, DIR_MODE)
    if durable:
        fsync_dir(parent)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written < len(data):  # rare for regular files: a signal or a full disk cut it short
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def _fill(fd: int, data: bytes, *, durable: bool) -> None:
    """Write a new file's whole content through ``fd`` (0600, fsynced if durable), then close."""
    try:
        _write_all(fd, data)
        os.fchmod(fd, FILE_MODE)
        if durable:
            _fsync(fd)
    finally:
        os.close(fd)


def _create_temp(directory: str, name: str, path: Path | str) -> tuple[str, int]:
    """Create a fresh temp file beside ``path``; return its name and descriptor."""
    for _ in range(8):
        tmp = f"{directory}/.{name}.{_pid}.{next(_temp_counter):08x}{TEMP_SUFFIX}"
        try:
            return tmp, os.open(tmp, _NEW_FILE, FILE_MODE)
        except FileExistsError:
            continue  # left by a killed process that had this pid
        except OSError as exc:
            raise KitaruBackendError(f"Cannot write {path}: {exc.strerror}") from exc
    raise KitaruBackendError(f"Cannot write {path}: no free temp file name")


def write_atomic(
    path: Path | str, data: bytes, *, durable: bool = True, sync_dir: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync dir).

    ``sync_dir=False`` leaves the directory fsync to the caller's next durable write in the
    same directory (one directory fsync then makes both renames durable).
    """
    directory, sep, name = os.fspath(path).rpartition(os.sep)
    directory = directory or sep or "."
    tmp, fd = _create_temp(directory, name, path)
    try:
        _fill(fd, data, durable=durable)
        os.replace(tmp, path)
        if durable and sync_dir:
            fsync_dir(directory)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise KitaruBackendError(f"Cannot write {path}: {exc.strerror}") from exc
        raise


def write_once(path: Path | str, data: bytes, *, durable: bool) -> None:
    """Create ``path`` with ``data``, in place (no temp file, no rename).

    Only for a file no reader opens before a later atomic write makes it reachable (an
    execution's ``execution.yaml``, read only once its ``state.json`` exists).
    """
    try:
        _fill(os.open(path, _NEW_FILE, FILE_MODE), data, durable=durable)
    except OSError as exc:
        raise KitaruBackendError(f"Cannot write {path}: {exc.strerror}") from exc


def create_marker(path: Path | str, *, durable: bool, same_as: Path | str | None = None) -> None:
    """Create an empty marker file (no content, so creating the name is the whole write).

    With ``same_as`` (an existing empty file) the marker is made another name of that file:
    ``link`` allocates no inode, which is most of what creating a file costs.
    """
    linked = False
    if same_as is not None:
        try:
            os.link(same_as, path, follow_symlinks=False)
            linked = True
        except FileExistsError:
            return
        except OSError:
            pass  # no such file, or no hard links here: make an empty file instead
    if not linked:
        try:
            os.close(os.open(path, _NEW_FILE, FILE_MODE))
        except FileExistsError:
            return
    if durable:
        fsync_dir(os.path.dirname(os.fspath(path)) or ".")


def write_new(path: Path, data: bytes = b"", *, durable: bool = True) -> bool:
    """Create ``path`` with ``data`` unless it exists; return whether it was created.

    Used for immutable files (blobs, markers) whose content never changes once written.
    """
    if path.exists():
        return False
    write_atomic(path, data, durable=durable)
    return True


class AppendStream:
    """An append-only JSONL file kept open: one whole line per ``write`` on ``O_APPEND``.

    Lines are capped at ``MAX_LINE`` and not fsynced (a torn last line is tolerated by readers).
    Threads may share one stream: each line is a single ``write`` at the end of the file.
    """

    def __init__(self, path: Path) -> None:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC
        self._fd: int | None = os.open(path, flags, FILE_MODE)
        size = os.fstat(self._fd).st_size
        # A torn last line (a crash) must not swallow the next one.
        self._torn = bool(size) and os.pread(self._fd, 1, size - 1) != b"\n"

    def write_line(self, line: bytes) -> None:
        """Append ``line`` (a newline is added if missing)."""
        if not line.endswith(b"\n"):
            line += b"\n"
        if len(line) > MAX_LINE:
            raise ValueError(f"log line of {len(line)} bytes exceeds {MAX_LINE}")
        if self._fd is None:
            raise ValueError("append stream is closed")
        if self._torn:
            line = b"\n" + line
            self._torn = False
        _write_all(self._fd, line)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def append_line(path: Path, line: bytes) -> None:
    """Append one whole line to ``path`` (see ``AppendStream``)."""
    stream = AppendStream(path)
    try:
        stream.write_line(line)
    finally:
        stream.close()


def is_torn_line(line: bytes) -> bool:
    """True for an unparsable line that a crash mid-append can leave: a cut-off JSON object or
    zero bytes. Such a line is skipped by readers (later appends start on a new line)."""
    stripped = line.lstrip(b"\x00")
    return not stripped.strip() or (
        stripped.startswith(b"{") and not stripped.rstrip().endswith(b"}")
    )


def read_bytes(path: Path | str, *, limit: int = MAX_RECORD) -> bytes:
    """Read a whole file without following a symlink, refusing files over ``limit``."""
    try:
        # O_NONBLOCK: a FIFO planted where a record belongs must not hang the reader (it is
        # then refused as not a regular file); for regular files the flag changes nothing.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KitaruCorruptRecordError(path, exc.strerror or str(exc)) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KitaruCorruptRecordError(path, "not a regular file")
        if info.st_size > limit:
            raise KitaruCorruptRecordError(path, f"larger than {limit} bytes")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
