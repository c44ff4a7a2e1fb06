"""A small ``fcntl.flock`` helper: the execution lock and the runner lock.

One descriptor per acquisition (flock belongs to the open file description, so threads with
their own descriptors exclude each other). What is locked is never deleted or renamed: the
execution folder itself (the execution lock) and ``runner.lock``, an empty file; deleting one
would let two holders lock two different inodes. No lock library is used because they unlock
on release or at exit, which would free a lock handed over to a child process.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

from kitaru.errors import KitaruCorruptRecordError, KitaruLockTimeoutError

__all__ = ["FOLDER_LOCK_FALLBACK", "FileLock", "is_locked", "try_lock_fd"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _open_lock_file(path: Path | str, folder: bool = False) -> int:
    """A descriptor to flock: an existing ``folder``, or a lock file (created if absent)."""
    if folder:
        return os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    return os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)


# A file system that does not support flock on a folder (EBADF: it wants a descriptor open
# for writing; EOPNOTSUPP) gets a folder lock on this file inside it instead. The refusal is a
# property of the file system, so every process on it agrees. Transient errors (ENOLCK) are
# not refusals: falling back on them would split the lockers.
FOLDER_LOCK_FALLBACK = "lock"
_FOLDER_LOCK_REFUSED = {errno.EBADF, errno.EOPNOTSUPP}


def try_lock_fd(path: Path | str, folder: bool = False) -> int | None:
    """Take an exclusive lock on ``path`` without waiting; return its descriptor or None."""
    fd = _open_lock_file(path, folder)
    try:
        if _flock_now(fd):
            return fd
    except OSError as exc:
        os.close(fd)
        if folder and exc.errno in _FOLDER_LOCK_REFUSED:
            return try_lock_fd(os.path.join(path, FOLDER_LOCK_FALLBACK))
        raise
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def is_locked(path: Path | str) -> bool:
    """True if some descriptor (in any process, this one included) holds ``path``'s lock.

    Probes with a fresh descriptor and a shared, non-blocking lock released at once, so two
    probes never disturb each other and a lock this process holds is seen as held.
    """
    if not os.path.exists(path):
        return False
    try:
        # O_NONBLOCK: a FIFO planted where the lock file belongs must not hang the probe.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:  # e.g. ELOOP: a symlink planted where the lock file belongs
        raise KitaruCorruptRecordError(path, f"cannot open lock file: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise KitaruCorruptRecordError(path, "lock file is not a regular file")
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)  # closing drops the probe's shared lock
    return False


def _flock_now(fd: int) -> bool:
    """Take an exclusive flock on ``fd`` without waiting; False if someone else holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _poll(attempt: Callable[[], int | None], timeout: float, what: str, path: Path | str) -> int:
    """Call ``attempt`` with growing pauses until it returns a descriptor or time runs out."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        fd = attempt()
        if fd is not None:
            return fd
        if time.monotonic() >= deadline:
            raise KitaruLockTimeoutError(
                f"Timed out after {timeout:g}s waiting for the {what} {path}: another kitaru "
                "process holds it. Wait for it to finish, or stop it; the lock is released as "
                "soon as that process exits."
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class FileLock:
    """An exclusive flock on ``path`` (a lock file, or an existing ``folder``), taken by polling
    until ``timeout`` seconds."""

    def __init__(
        self,
        path: Path | str,
        *,
        timeout: float = 30.0,
        what: str = "lock",
        folder: bool = False,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.what = what
        self.folder = folder
        self.fd: int | None = None

    def acquire(self) -> FileLock:
        """Take the lock or raise ``KitaruLockTimeoutError`` naming it."""
        self.fd = _poll(
            lambda: try_lock_fd(self.path, self.folder), self.timeout, self.what, self.path
        )
        return self

    def release(self) -> None:
        """Release the lock by closing the descriptor."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def detach(self) -> int:
        """Give up ownership of the descriptor (for handing it to a child process)."""
        if self.fd is None:
            raise RuntimeError("lock not held")
        fd, self.fd = self.fd, None
        return fd

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
