"""The detached runner: ``python -m kitaru.runtime.runner EXEC_ID --lock-fd N --store PATH``.

It re-imports the flow named in ``execution.yaml`` and re-runs its body, reusing every recorded
call. A flow defined in a script that ran as ``__main__`` is re-imported from that file and
registered as ``__main__`` (so recorded class paths like ``__main__.ReleaseDetails`` resolve),
without running the script's main block.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from kitaru.errors import KitaruRuntimeError
from kitaru.runtime.context import runner_importing
from kitaru.runtime.replay import decode_inputs
from kitaru.store import Store, now_iso

__all__ = ["main", "resolve_flow"]

_SCRIPT_MODULE = "__kitaru_script__"


def _load_script(path: str) -> types.ModuleType:
    module = types.ModuleType(_SCRIPT_MODULE)
    module.__file__ = path
    source = Path(path).read_text()
    code = compile(source, path, "exec")
    previous_main = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    # Class machinery (dataclasses, typing) looks the defining module up by its name.
    sys.modules[_SCRIPT_MODULE] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - the user's own flow script
    except BaseException:
        if previous_main is not None:
            sys.modules["__main__"] = previous_main
        raise
    # Classes and functions defined by the script name it as __main__, as in the first run.
    for value in list(module.__dict__.values()):
        if getattr(value, "__module__", None) == _SCRIPT_MODULE:
            try:
                value.__module__ = "__main__"
            except (AttributeError, TypeError):
                pass
    module.__name__ = "__main__"
    return module


def resolve_flow(source: dict[str, Any]) -> Any:
    """Import the flow function recorded in an execution's ``source``."""
    entry = source.get("sys_path_entry")
    if entry and entry not in sys.path:
        sys.path.insert(0, entry)
    where = source.get("file") or source["module"]
    token = runner_importing.set(where)
    try:
        if source["module"] == "__main__":
            if not source.get("file"):
                raise KitaruRuntimeError(
                    "The flow was defined interactively and cannot be re-imported."
                )
            module = _load_script(source["file"])
        else:
            module = importlib.import_module(source["module"])
    finally:
        runner_importing.reset(token)
    obj: Any = module
    for part in source["qualname"].split("."):
        obj = getattr(obj, part)
    return getattr(obj, "func", obj)


def _fail_before_start(store: Store, exec_id: str, exc: BaseException) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    store.write_runner_err(exec_id, text)
    message = f"The runner could not start the flow: {type(exc).__name__}: {exc}"
    failure = {
        "message": message,
        "exception_type": type(exc).__name__,
        "traceback": text,
        "origin": "runtime",
    }

    def fail(state: dict[str, Any]) -> dict[str, Any]:
        state.update(
            status="failed", status_reason=message, failure=failure, ended_at=now_iso(), runner=None
        )
        return state

    store.update_state(exec_id, fail, expect={"running"})


def _prepare(store: Store, exec_id: str) -> tuple[Any, tuple, dict, dict, list, dict | None]:
    spec = store.read_spec(exec_id)
    func = resolve_flow(spec["source"])
    inputs = spec["inputs"]
    args, kwargs = decode_inputs(store, func, inputs)
    journal = store.list_calls(exec_id) + store.list_waits(exec_id)
    return func, args, kwargs, spec["settings"], journal, spec.get("replay")


def _quiet_stderr() -> None:
    """Stop writing to runner.err: from here on, output is captured into the logs."""
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def run(exec_id: str, store_root: Path) -> int:
    """Continue execution ``exec_id``; the caller already holds its runner lock."""
    from kitaru.runtime.execute import execute_flow

    store = Store.open_at(store_root)
    runner = Store.runner_info()
    store.update_state(exec_id, lambda s: {**s, "runner": runner}, expect={"running"})
    try:
        func, args, kwargs, settings, journal, replay = _prepare(store, exec_id)
    except BaseException as exc:  # noqa: BLE001 - recorded, then the runner exits
        _fail_before_start(store, exec_id, exc)
        return 1
    _quiet_stderr()
    store.drop_runner_err(exec_id)
    status = execute_flow(store, exec_id, func, args, kwargs, settings, journal, replay=replay)
    return 0 if status in ("completed", "waiting") else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the runner process."""
    parser = argparse.ArgumentParser(prog="kitaru-runner")
    parser.add_argument("exec_id")
    parser.add_argument("--lock-fd", type=int, required=True)
    parser.add_argument("--store", required=True)
    ns = parser.parse_args(argv)
    os.set_inheritable(ns.lock_fd, False)  # the lock stays with this process only
    return run(ns.exec_id, Path(ns.store))


if __name__ == "__main__":
    sys.exit(main())
