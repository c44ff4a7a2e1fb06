"""The one exception hierarchy of Kitaru, named as upstream Kitaru names it.

Every error a user can see is a ``KitaruError``; the CLI turns each into one ``Error: ...`` line
and exit code 1. ``KitaruUsageError`` is also a ``ValueError`` and the state/runtime errors are
``RuntimeError``s, so callers can catch them idiomatically.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "FailureOrigin",
    "KitaruBackendError",
    "KitaruContextError",
    "KitaruCorruptRecordError",
    "KitaruDivergenceError",
    "KitaruError",
    "KitaruExecutionError",
    "KitaruFeatureNotAvailableError",
    "KitaruLockTimeoutError",
    "KitaruLogRetrievalError",
    "KitaruNotFoundError",
    "KitaruProjectNotFoundError",
    "KitaruRuntimeError",
    "KitaruStateError",
    "KitaruUsageError",
    "KitaruUserCodeError",
    "KitaruWaitValidationError",
]


class FailureOrigin(StrEnum):
    """Where a failure came from."""

    USER_CODE = "user_code"
    RUNTIME = "runtime"
    BACKEND = "backend"
    DIVERGENCE = "divergence"
    UNKNOWN = "unknown"


class KitaruError(Exception):
    """Root of every Kitaru error."""


class KitaruUsageError(KitaruError, ValueError):
    """Bad input to an API call or command."""


class KitaruWaitValidationError(KitaruUsageError):
    """A wait answer that its schema rejects."""


class KitaruContextError(KitaruError, RuntimeError):
    """An API used where it cannot run (a checkpoint outside a flow, ...)."""


class KitaruStateError(KitaruError, RuntimeError):
    """The execution's state forbids the operation."""


class KitaruRuntimeError(KitaruError, RuntimeError):
    """A runtime or serialization failure."""


class KitaruExecutionError(KitaruRuntimeError):
    """A flow finished unsuccessfully."""

    def __init__(
        self,
        message: str,
        *,
        exec_id: str | None = None,
        status: str | None = None,
        failure_origin: FailureOrigin | None = None,
    ) -> None:
        super().__init__(message)
        self.exec_id = exec_id
        self.status = status
        self.failure_origin = failure_origin


class KitaruUserCodeError(KitaruExecutionError):
    """A flow failed because user code raised."""


class KitaruDivergenceError(KitaruExecutionError):
    """A re-run flow body made different calls than the recorded journal."""


class KitaruBackendError(KitaruRuntimeError):
    """The store could not be read or written."""


class KitaruLogRetrievalError(KitaruBackendError):
    """Runtime logs could not be read."""


class KitaruNotFoundError(KitaruBackendError, LookupError):
    """No execution, artifact or record with that id."""


class KitaruProjectNotFoundError(KitaruBackendError):
    """No `.kitaru/` folder was found."""


class KitaruCorruptRecordError(KitaruBackendError):
    """A record on disk cannot be parsed or has the wrong shape."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"Corrupt record {path}: {reason}")
        self.path = path
        self.reason = reason


class KitaruLockTimeoutError(KitaruBackendError):
    """A lock could not be taken in time."""


class KitaruFeatureNotAvailableError(KitaruError, NotImplementedError):
    """A documented upstream feature that this implementation does not offer."""
