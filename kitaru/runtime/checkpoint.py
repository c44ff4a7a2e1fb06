"""``@checkpoint``: a durable step whose output is recorded and reused."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from kitaru.errors import KitaruContextError, KitaruUsageError
from kitaru.runtime.cache import function_source
from kitaru.runtime.context import current_call, current_run

__all__ = ["CheckpointDefinition", "CheckpointFuture", "MapFuture", "checkpoint", "normalize_name"]

_RUNTIMES = ("inline", "isolated")
NESTED = "Nested checkpoint calls are not supported in the Kitaru MVP."


def normalize_name(name: str, prefix: str) -> str:
    """A function name as a checkpoint/flow name: non-word characters become ``_``."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)[:120] or prefix
    return f"{prefix}_{clean}" if clean[0].isdigit() else clean


class CheckpointFuture:
    """The pending result of a submitted checkpoint call."""

    def __init__(self, future: Future[Any], invocation_id: str) -> None:
        self._future = future
        self.invocation_id = invocation_id

    def result(self, timeout: float | None = None) -> Any:
        """Block until the call finishes and return its output (or raise its error)."""
        return self._future.result(timeout)

    def done(self) -> bool:
        """True once the call has finished."""
        return self._future.done()


class MapFuture(list):
    """A list of ``CheckpointFuture`` with helpers to gather the results."""

    def result(self, timeout: float | None = None) -> list[Any]:
        """The outputs of every call, in call order."""
        return [f.result(timeout) for f in self]

    def unpack(self) -> tuple[list[Any], ...]:
        """Split tuple outputs into one list per position."""
        results = self.result()
        if not results:
            return ()
        return tuple(list(col) for col in zip(*results, strict=True))


def _wait_after(after: Any) -> None:
    if after is None:
        return
    items = after if isinstance(after, list | tuple) else [after]
    for item in items:
        if isinstance(item, CheckpointFuture | MapFuture):
            item.result()


class CheckpointDefinition:
    """A decorated checkpoint function."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        retries: int | None,
        type: str | None,
        runtime: str | None,
    ) -> None:
        bad_retries = not isinstance(retries, int) or isinstance(retries, bool) or retries < 0
        if retries is not None and bad_retries:
            raise KitaruUsageError("Checkpoint `retries` must be an integer >= 0.")
        if runtime is not None and str(runtime).strip().lower() not in _RUNTIMES:
            raise KitaruUsageError(
                f"Invalid checkpoint runtime {runtime!r}. Expected one of: inline, isolated."
            )
        self.func = func
        self.name = normalize_name(func.__name__, "checkpoint")
        self.retries = retries
        self.type = type
        self.runtime = str(runtime).strip().lower() if runtime is not None else None
        self._source: str | None | bool = False
        functools.update_wrapper(self, func)

    @property
    def source(self) -> str | None:
        """The function's source (part of its cache key), or None if unavailable."""
        if self._source is False:
            self._source = function_source(self.func)
        return self._source  # type: ignore[return-value]

    def _run_checked(self, what: str) -> Any:
        run = current_run()
        if run is None:
            if what == "call":
                raise KitaruContextError("Checkpoints can only run inside a @flow.")
            raise KitaruContextError(
                "Concurrent checkpoint execution is only available inside a running @flow."
            )
        if current_call() is not None:
            raise KitaruContextError(NESTED)
        return run

    def __call__(self, *args: Any, id: str | None = None, after: Any = None, **kwargs: Any) -> Any:
        run = self._run_checked("call")
        seq, inv = run.allocate("checkpoint", self.name, id)
        _wait_after(after)
        return run.call(self, seq, inv, args, kwargs)

    def submit(
        self, *args: Any, id: str | None = None, after: Any = None, **kwargs: Any
    ) -> CheckpointFuture:
        """Start the call on a worker thread and return a future of its output."""
        run = self._run_checked("submit")
        seq, inv = run.allocate("checkpoint", self.name, id)

        def work() -> Any:
            _wait_after(after)
            return run.call(self, seq, inv, args, kwargs)

        return CheckpointFuture(run.submit(work), inv)

    def map(
        self, *iterables: Iterable[Any], after: Any = None, **kw_iterables: Iterable[Any]
    ) -> MapFuture:
        """Submit one call per element (arguments zipped, equal lengths required)."""
        self._run_checked("map")
        columns = [list(it) for it in iterables]
        names = list(kw_iterables)
        kw_columns = [list(kw_iterables[n]) for n in names]
        lengths = {len(c) for c in columns + kw_columns}
        if len(lengths) > 1:
            raise KitaruUsageError("All `map` arguments must have the same length.")
        rows = zip(*columns, *kw_columns, strict=True)
        return self._submit_rows(rows, len(columns), names, after)

    def product(
        self, *iterables: Iterable[Any], after: Any = None, **kw_iterables: Iterable[Any]
    ) -> MapFuture:
        """Submit one call per element of the cartesian product of the arguments."""
        self._run_checked("product")
        names = list(kw_iterables)
        pools = [list(it) for it in iterables] + [list(kw_iterables[n]) for n in names]
        return self._submit_rows(itertools.product(*pools), len(iterables), names, after)

    def _submit_rows(
        self, rows: Iterable[tuple], n_pos: int, names: list[str], after: Any
    ) -> MapFuture:
        out = MapFuture()
        for row in rows:
            kwargs = dict(zip(names, row[n_pos:], strict=True))
            out.append(self.submit(*row[:n_pos], after=after, **kwargs))
        return out


def checkpoint(
    func: Callable[..., Any] | None = None,
    /,
    *,
    retries: int | None = None,
    type: str | None = None,
    runtime: str | None = None,
) -> Any:
    """Mark a function as a durable checkpoint (bare ``@checkpoint`` or with options)."""

    def wrap(f: Callable[..., Any]) -> CheckpointDefinition:
        return CheckpointDefinition(f, retries=retries, type=type, runtime=runtime)

    return wrap(func) if func is not None else wrap
