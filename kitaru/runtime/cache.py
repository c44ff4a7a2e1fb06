"""Checkpoint cache keys: function source plus canonically encoded inputs.

A call whose inputs have no canonical encoding, or whose function has no retrievable source,
has no key and never uses the cache.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

import orjson

from kitaru.store.objects import is_exact_json

__all__ = ["cache_key", "function_source"]

_VERSION = b"kitaru-cache-1"


def function_source(func: Callable[..., Any]) -> str | None:
    """The function's source text, or None when it cannot be retrieved."""
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return None


def _canonical(value: Any) -> Any:
    # Tagged, so a plain dict can never look like an encoded model.
    if is_exact_json(value):
        return ["json", value]
    module = sys.modules.get("pydantic")
    base = getattr(module, "BaseModel", None) if module else None
    if base is not None and isinstance(value, base):
        cls = type(value)
        return ["model", f"{cls.__module__}:{cls.__qualname__}", value.model_dump(mode="json")]
    raise ValueError("no canonical encoding")


@functools.lru_cache(maxsize=1024)
def _hashed_function(name: str, source: str) -> Any:
    """The hash state after the version, the name and the source (shared: never update it)."""
    digest = hashlib.sha256()
    for part in (_VERSION, name.encode(), source.encode()):
        digest.update(part)
        digest.update(b"\0")
    return digest


def _function_digest(name: str, source: str) -> Any:
    """A fresh hash of the version, the name and the source, to add a call's inputs to."""
    return _hashed_function(name, source).copy()


def cache_key(name: str, source: str | None, args: tuple, kwargs: dict) -> str | None:
    """The cache key of a call, or None when it has none."""
    if source is None:
        return None
    try:
        canon = orjson.dumps(
            [[_canonical(a) for a in args], {k: _canonical(v) for k, v in kwargs.items()}],
            option=orjson.OPT_SORT_KEYS,
        )
    except (ValueError, TypeError, orjson.JSONEncodeError):
        return None
    digest = _function_digest(name, source)
    digest.update(canon)
    digest.update(b"\0")
    return digest.hexdigest()
