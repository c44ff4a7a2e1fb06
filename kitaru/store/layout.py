"""Where things live: find the project's store, validate names, map ids to paths.

Every id and user-given name passes ``validate_name`` before it becomes part of a path, so a
hostile name is refused before any file is touched.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from kitaru.errors import KitaruUsageError

__all__ = [
    "ENV_PROJECT_DIR",
    "STORE_DIRNAME",
    "find_store",
    "folders_up",
    "new_execution_id",
    "parse_sub_id",
    "validate_name",
]

STORE_DIRNAME = ".kitaru"
ENV_PROJECT_DIR = "KITARU_PROJECT_DIR"
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_RESERVED_SUFFIXES = (".", ".lock", ".tmp")
# Names already found valid: the same few invocation ids are checked at every checkpoint.
_VALID_NAMES: set[str] = set()
_MAX_VALID_NAMES = 4096


def validate_name(kind: str, value: object) -> str:
    """Return ``value`` if it is a safe name for ``kind``, else raise ``KitaruUsageError``.

    Names match ``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`` and do not end in ``.``, ``.lock`` or
    ``.tmp``; they are never rewritten into something else.
    """
    if type(value) is str and value in _VALID_NAMES:
        return value
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise KitaruUsageError(
            f"Invalid {kind} {shown}: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            "not starting with '.' or '-'."
        )
    if value.endswith(_RESERVED_SUFFIXES):
        raise KitaruUsageError(
            f"Invalid {kind} {value!r}: it may not end in '.', '.lock' or '.tmp'."
        )
    if type(value) is str:  # not a str subclass, whose equality could be redefined
        if len(_VALID_NAMES) >= _MAX_VALID_NAMES:
            _VALID_NAMES.clear()
        _VALID_NAMES.add(value)
    return value


def parse_sub_id(kind: str, value: object, marker: str) -> tuple[str, int, int | None]:
    """Split a call/wait/artifact id (``<exec_id>.<marker><seq>[.<n>]``) into its parts."""
    validate_name(kind, value)
    assert isinstance(value, str)
    exec_id, sep, rest = value.partition(".")
    parts = rest.split(".")
    ok = (
        sep
        and exec_id.startswith("kr-")
        and parts[0].startswith(marker)
        and parts[0][len(marker) :].isdigit()
        and len(parts) <= 2
        and (len(parts) == 1 or parts[1].isdigit())
    )
    if not ok:
        raise KitaruUsageError(f"Invalid {kind} {value!r}: expected '<exec_id>.{marker}<n>'.")
    seq = int(parts[0][len(marker) :])
    sub = int(parts[1]) if len(parts) == 2 else None
    return exec_id, seq, sub


def find_store(override: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the store folder, or None when there is none.

    ``override`` (``kitaru --project``) wins over ``KITARU_PROJECT_DIR``, which wins over walking
    up from the working directory. An override may name a project root or a store folder.
    """
    explicit = override if override is not None else os.environ.get(ENV_PROJECT_DIR) or None
    if explicit is not None:
        path = os.path.expanduser(os.fspath(explicit))
        if not os.path.isabs(path):
            path = os.path.join(os.getcwd(), path)
        if os.path.isfile(os.path.join(path, "format.json")):
            return Path(path)
        if os.path.isdir(os.path.join(path, STORE_DIRNAME)):
            return Path(path, STORE_DIRNAME)
        return None
    for folder in folders_up(os.getcwd()):
        candidate = os.path.join(folder, STORE_DIRNAME)
        if os.path.isdir(candidate):
            return Path(candidate)
    return None


def folders_up(start: str) -> Iterator[str]:
    """``start`` and each folder above it, as strings (cheaper than ``Path.parents``)."""
    folder = start
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def default_project_root() -> Path:
    """Where a new store is created when none exists: ``KITARU_PROJECT_DIR`` or the cwd."""
    explicit = os.environ.get(ENV_PROJECT_DIR)
    return Path(explicit).expanduser().absolute() if explicit else Path.cwd()


def durability_from_env() -> str | None:
    """The ``KITARU_DURABILITY`` setting, if set."""
    value = os.environ.get("KITARU_DURABILITY", "").strip().lower()
    return value or None


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_id_lock = threading.Lock()
_last_ms = 0


def _b32(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_CROCKFORD[number & 31])
        number >>= 5
    return "".join(reversed(chars))


def new_execution_id() -> str:
    """Return a fresh ``kr-`` id that sorts by creation time (strictly increasing in-process)."""
    global _last_ms
    with _id_lock:
        now = int(time.time() * 1000)
        _last_ms = max(now, _last_ms + 1)
        stamp = _last_ms
    return f"kr-{_b32(stamp, 9)}{_b32(int.from_bytes(os.urandom(4)) >> 7, 5)}"
