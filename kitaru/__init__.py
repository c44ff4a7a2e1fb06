"""Kitaru: durable execution for Python agents, kept in a plain-file `.kitaru/` folder.

Public names are loaded lazily so that ``import kitaru`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from kitaru.errors import (
    FailureOrigin,
    KitaruBackendError,
    KitaruContextError,
    KitaruDivergenceError,
    KitaruError,
    KitaruExecutionError,
    KitaruFeatureNotAvailableError,
    KitaruLogRetrievalError,
    KitaruRuntimeError,
    KitaruStateError,
    KitaruUsageError,
    KitaruUserCodeError,
    KitaruWaitValidationError,
)

__version__ = "0.1.0"

_LAZY = {
    "KitaruClient": "kitaru.client",
    "flow": "kitaru.runtime.flow",
    "FlowHandle": "kitaru.runtime.flow",
    "checkpoint": "kitaru.runtime.checkpoint",
    "log": "kitaru.runtime.api",
    "save": "kitaru.runtime.api",
    "load": "kitaru.runtime.api",
    "wait": "kitaru.runtime.wait",
    "configure": "kitaru.runtime.settings",
    "KitaruConfig": "kitaru.runtime.settings",
}

__all__ = [
    "FailureOrigin",
    "FlowHandle",
    "KitaruConfig",
    "checkpoint",
    "configure",
    "flow",
    "load",
    "log",
    "save",
    "wait",
    "KitaruBackendError",
    "KitaruClient",
    "KitaruContextError",
    "KitaruDivergenceError",
    "KitaruError",
    "KitaruExecutionError",
    "KitaruFeatureNotAvailableError",
    "KitaruLogRetrievalError",
    "KitaruRuntimeError",
    "KitaruStateError",
    "KitaruUsageError",
    "KitaruUserCodeError",
    "KitaruWaitValidationError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kitaru' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
