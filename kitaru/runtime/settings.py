"""Execution settings and their precedence.

defaults < ``[tool.kitaru]`` in the nearest pyproject.toml < ``KITARU_*`` environment <
``kitaru.configure()`` < ``@flow(...)`` < ``.run(...)`` arguments (upstream Kitaru's order).
"""

from __future__ import annotations

import copy
import os
import stat
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kitaru.errors import KitaruUsageError
from kitaru.store.layout import folders_up

__all__ = ["UNSET", "KitaruConfig", "configure", "resolve_settings", "validate_layer"]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}
_KEYS = ("stack", "image", "cache", "retries")


@dataclass(frozen=True)
class KitaruConfig:
    """One layer of execution settings (None = not set in this layer)."""

    stack: str | None = None
    image: Any = None
    cache: bool | None = None
    retries: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The layer as a plain dict."""
        return asdict(self)


_configured: dict[str, Any] = {}
_configured_lock = threading.Lock()


def _check(key: str, value: Any, source: str) -> Any:
    if value is None:
        return None
    if key == "cache" and type(value) is not bool:
        raise KitaruUsageError(f"Invalid value for cache in {source}: expected true or false.")
    if key == "retries" and (type(value) is not int or value < 0):
        raise KitaruUsageError(f"Invalid value for retries in {source}: expected an integer >= 0.")
    if key == "stack":
        if not isinstance(value, str) or not value.strip():
            raise KitaruUsageError(
                f"Invalid value for stack in {source}: expected a non-empty name."
            )
        if value.strip() != "local":
            raise KitaruUsageError(
                f"Unknown stack '{value}' (from {source}): only the 'local' stack exists here."
            )
        return "local"
    return value


def validate_layer(layer: dict[str, Any], source: str) -> dict[str, Any]:
    """Check a settings layer's values; unset (None) keys are dropped."""
    return {k: _check(k, v, source) for k, v in layer.items() if k in _KEYS and v is not None}


def configure(
    *,
    stack: Any = UNSET,
    image: Any = UNSET,
    cache: Any = UNSET,
    retries: Any = UNSET,
    project: Any = UNSET,
) -> KitaruConfig:
    """Set process-wide execution defaults; only the arguments given change, None clears.

    Returns the current process-level layer.
    """
    if project is not UNSET and project is not None:
        raise KitaruUsageError(
            "configure(project=...) is not supported: set KITARU_PROJECT_DIR to choose a store."
        )
    given = {"stack": stack, "image": image, "cache": cache, "retries": retries}
    with _configured_lock:
        for key, value in given.items():
            if value is UNSET:
                continue
            if value is None:
                _configured.pop(key, None)
            else:
                _configured[key] = _check(key, value, "kitaru.configure()")
        return KitaruConfig(**_configured)


def _env_layer() -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if os.environ.get("KITARU_RUNNER"):
        raise KitaruUsageError("`KITARU_RUNNER` was renamed to `KITARU_STACK`; set that instead.")
    stack = os.environ.get("KITARU_STACK", "").strip()
    if stack:
        layer["stack"] = stack
    cache = os.environ.get("KITARU_CACHE", "").strip().lower()
    if cache:
        if cache not in _TRUE | _FALSE:
            raise KitaruUsageError(f"Invalid value for KITARU_CACHE: {cache!r}.")
        layer["cache"] = cache in _TRUE
    retries = os.environ.get("KITARU_RETRIES", "").strip()
    if retries:
        if not (retries.isascii() and retries.isdigit()):
            raise KitaruUsageError(f"Invalid value for KITARU_RETRIES: {retries!r}.")
        layer["retries"] = int(retries)
    image = os.environ.get("KITARU_IMAGE", "").strip()
    if image:
        layer["image"] = image
    return validate_layer(layer, "the environment")


# Parsed [tool.kitaru] sections by pyproject.toml path, with the stat signature they were read
# at: a project's pyproject.toml is parsed once per process, not at every run (parsing one takes
# from a fraction of a millisecond to several, more than an empty run's own work). As in git's
# index, a file modified within _RACY_SECONDS of being read is not trusted to show a later edit
# in its mtime (a rewrite of the same size in the same clock tick), so it is read again.
_pyproject_seen: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {}
_RACY_SECONDS = 2.0


def _pyproject_layer(start: Path | str) -> dict[str, Any]:
    for folder in folders_up(os.fspath(start)):
        path = os.path.join(folder, "pyproject.toml")
        try:
            info = os.stat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        signature = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size)
        seen = _pyproject_seen.get(path)
        if seen is not None and seen[0] == signature:
            return copy.deepcopy(seen[1])  # a layer's values (an image table) are never shared
        layer = _read_pyproject(path)
        if time.time() - max(info.st_mtime, info.st_ctime) > _RACY_SECONDS:
            _pyproject_seen[path] = (signature, layer)
        return copy.deepcopy(layer)
    return {}


def _read_pyproject(path: str) -> dict[str, Any]:
    """The validated ``[tool.kitaru]`` section of ``path`` (empty when it has none)."""
    import tomllib

    try:
        with open(path, encoding="utf-8") as file:
            data = tomllib.loads(file.read())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KitaruUsageError(f"Cannot read {path}: {exc}") from exc
    section = data.get("tool", {}).get("kitaru", {})
    if "runner" in section:
        raise KitaruUsageError(f"{path}: [tool.kitaru] key `runner` was renamed to `stack`.")
    return validate_layer(section, path)


def resolve_settings(
    decorator: dict[str, Any], run: dict[str, Any], *, cwd: Path | None = None
) -> dict[str, Any]:
    """Resolve the settings of one run through every layer."""
    resolved: dict[str, Any] = {"stack": "local", "image": None, "cache": True, "retries": 0}
    with _configured_lock:
        configured = dict(_configured)
    layers = (
        _pyproject_layer(cwd or os.getcwd()),
        _env_layer(),
        configured,
        validate_layer(decorator, "@flow"),
        validate_layer(run, ".run()"),
    )
    for layer in layers:
        resolved.update(layer)
    return resolved
