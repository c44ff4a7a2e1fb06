"""Runtime log capture: stdout/stderr lines and ``logging`` records of a running flow.

What the terminal shows does not change: the stream proxies write everything through. Lines are
routed by context variable, so output of other threads of the process is not attributed to the
flow, while ``.submit()`` threads (which carry the context) are. Output written straight to file
descriptors (subprocesses, C extensions) is not captured.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from kitaru.runtime.context import current_call, flow_run_var
from kitaru.store import now_iso

if TYPE_CHECKING:
    from kitaru.store import Store

__all__ = ["LogCapture", "capture_installed"]

_STREAM_LEVEL = {"stdout": "INFO", "stderr": "WARNING"}


class LogCapture:
    """Buffers partial lines per stream and checkpoint call, appends whole lines to the log."""

    def __init__(self, store: Store, exec_id: str) -> None:
        self.store = store
        self.exec_id = exec_id
        self._lock = threading.Lock()
        self._partial: dict[tuple[str, int | None], str] = {}

    def feed(self, stream: str, text: str, frame: FrameType | None) -> None:
        """Take text written to ``stream``; complete lines are logged."""
        scope = current_call()
        key = (stream, scope.seq if scope else None)
        with self._lock:
            buffered = self._partial.pop(key, "") + text
            *lines, rest = buffered.split("\n")
            if rest:
                self._partial[key] = rest
        for line in lines:
            self._append(line.rstrip("\r"), _STREAM_LEVEL[stream], scope, frame)

    def record(self, record: logging.LogRecord) -> None:
        """Log a ``logging`` record."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the flow
            message = str(record.msg)
        entry = {"module": record.name, "filename": record.pathname, "lineno": record.lineno}
        self._append(message, record.levelname, current_call(), None, entry)

    def end_call(self, scope: Any) -> None:
        """Log what a finished checkpoint call left unfinished, under that call."""
        if not self._partial:
            return
        with self._lock:
            pending = [
                (key, self._partial.pop(key)) for key in list(self._partial) if key[1] == scope.seq
            ]
        for (stream, _seq), text in pending:
            self._append(text, _STREAM_LEVEL[stream], scope, None)

    def flush(self) -> None:
        """Log what is left of unfinished lines (at the end of a run)."""
        with self._lock:
            pending, self._partial = self._partial, {}
        for (stream, _seq), text in pending.items():
            self._append(text, _STREAM_LEVEL[stream], None, None)

    def _append(
        self,
        message: str,
        level: str,
        scope: Any,
        frame: FrameType | None,
        where: dict[str, Any] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "timestamp": now_iso(),
            "level": level,
            "source": "step" if scope else "runner",
            "checkpoint_name": scope.name if scope else None,
            "invocation_id": scope.invocation_id if scope else None,
        }
        if where is not None:
            entry.update(where)
        elif frame is not None:
            entry.update(
                module=frame.f_globals.get("__name__"),
                filename=frame.f_code.co_filename,
                lineno=frame.f_lineno,
            )
        entry["message"] = message
        try:
            self.store.append_log(self.exec_id, entry)
        except Exception:  # losing a log line must never fail the user's flow
            pass


class _StreamProxy:
    """Writes through to the real stream and feeds the current flow's capture."""

    def __init__(self, original: TextIO, name: str) -> None:
        self._original = original
        self._name = name

    def write(self, text: str) -> int:
        written = self._original.write(text)
        run = flow_run_var.get()
        if run is not None and run.capture is not None and text:
            run.capture.feed(self._name, text, sys._getframe(1))
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _Handler(logging.Handler):
    """Feeds INFO-and-up records of a running flow into its capture."""

    def __init__(self, forward_to: TextIO | None) -> None:
        super().__init__(logging.INFO)
        # With no handler of its own, the root logger printed WARNING and up through
        # logging.lastResort; adding this handler silences that, so print those records here
        # (to the real stderr, so they are not captured a second time as a stderr line).
        self.forward_to = forward_to

    def emit(self, record: logging.LogRecord) -> None:
        run = flow_run_var.get()
        if run is not None and run.capture is not None:
            run.capture.record(record)
        if self.forward_to is not None and record.levelno >= logging.WARNING:
            try:
                self.forward_to.write(record.getMessage() + "\n")
            except Exception:
                self.handleError(record)


class _Installer:
    """Installs the proxies and the handler while at least one flow runs in the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                self._install()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._uninstall()

    def _install(self) -> None:
        root = logging.getLogger()
        level = root.level
        # A proxy left behind (a redirect that outlived a flow restored it) is unwrapped, so
        # no line is fed to a capture twice.
        out, err = _unwrap(sys.stdout), _unwrap(sys.stderr)
        handler = _Handler(None if root.handlers else err)
        self._saved = {
            "stdout": out,
            "stderr": err,
            "level": level,
            "handler": handler,
            "filters": [],
        }
        sys.stdout = _StreamProxy(out, "stdout")  # type: ignore[assignment]
        sys.stderr = _StreamProxy(err, "stderr")  # type: ignore[assignment]
        if level > logging.INFO:
            # Capturing INFO needs the root at INFO; handlers already there keep their threshold.
            for existing in root.handlers:
                keep = _MinLevel(level)
                existing.addFilter(keep)
                self._saved["filters"].append((existing, keep))
            root.setLevel(logging.INFO)
        root.addHandler(handler)

    def _uninstall(self) -> None:
        saved, self._saved = self._saved, {}
        root = logging.getLogger()
        root.removeHandler(saved["handler"])
        root.setLevel(saved["level"])
        for existing, keep in saved["filters"]:
            existing.removeFilter(keep)
        for name in ("stdout", "stderr"):
            if isinstance(getattr(sys, name), _StreamProxy):
                setattr(sys, name, saved[name])


def _unwrap(stream: Any) -> Any:
    while isinstance(stream, _StreamProxy):
        stream = stream._original
    return stream


class _MinLevel(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


capture_installed = _Installer()
