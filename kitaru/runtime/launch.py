"""Start a detached runner process for an execution (retry, resume, replay from outside).

The starting process takes ``runner.lock`` itself, moves the state with a compare-and-swap, and
hands the open lock descriptor to the child; then it closes its own copy *without unlocking*
(a flock belongs to the shared open file, so an unlock here would free the child's lock too).
There is no moment at which the execution looks abandoned, and no second runner can start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kitaru.errors import KitaruBackendError, KitaruStateError
from kitaru.store import Store, now_iso

__all__ = ["launched_runners", "load_target", "start_new", "start_replay", "start_runner"]

_launched: list[subprocess.Popen[bytes]] = []
_launched_lock = threading.Lock()


def launched_runners() -> list[subprocess.Popen[bytes]]:
    """Runner processes this process started (reaping the ones that exited)."""
    with _launched_lock:
        _launched[:] = [p for p in _launched if p.poll() is None]
        return list(_launched)


def _python(spec: dict[str, Any]) -> str:
    python = spec.get("python")
    return python if python and Path(python).exists() else sys.executable


def start_runner(
    store: Store,
    exec_id: str,
    *,
    expect: set[str],
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    verb: str = "start",
) -> None:
    """Move the execution to ``running`` and start a runner process that continues it."""
    lock = store.runner_lock(exec_id)
    try:
        lock.acquire()
    except Exception:
        raise KitaruStateError(
            f"Execution '{exec_id}' is already being run by another process."
        ) from None
    try:
        spec = store.read_spec(exec_id)
        previous = store.read_state(exec_id)

        def to_running(state: dict[str, Any]) -> dict[str, Any]:
            state.update(
                status="running",
                status_reason=None,
                failure=None,
                ended_at=None,
                cancel_requested=False,
                runner={"pid": None, "host": None, "started_at": now_iso()},
            )
            return prepare(state) if prepare else state

        store.update_state(exec_id, to_running, expect=expect)
        try:
            _spawn(store, exec_id, spec, lock.fd)
        except OSError as exc:
            store.update_state(exec_id, lambda s: previous | {"updated_at": now_iso()})
            raise KitaruBackendError(f"Failed to {verb} execution '{exec_id}': {exc}") from exc
        os.close(lock.detach())  # close without unlocking: the child now holds the lock
    finally:
        lock.release()


def start_replay(
    store: Store,
    source_id: str,
    from_: Any,
    overrides: dict[str, Any] | None,
    flow_inputs: dict[str, Any],
) -> str:
    """Create the replay execution of ``source_id`` and start its runner; return its id."""
    from kitaru.runtime.replay import create_replay, plan_replay

    plan = plan_replay(store, source_id, from_, overrides, flow_inputs)
    exec_id = store.claim_execution_id()
    lock = store.runner_lock(exec_id).acquire()
    try:
        create_replay(store, plan, exec_id, dict(plan.spec["settings"]))
        try:
            _spawn(store, exec_id, plan.spec, lock.fd)
        except OSError as exc:
            failure = {
                "message": f"Failed to start the runner: {exc}",
                "exception_type": None,
                "traceback": None,
                "origin": "runtime",
            }
            store.update_state(
                exec_id,
                lambda s: {
                    **s,
                    "status": "failed",
                    "failure": failure,
                    "status_reason": failure["message"],
                },
            )
            raise KitaruBackendError(f"Failed to replay execution '{source_id}': {exc}") from exc
        os.close(lock.detach())  # close without unlocking: the child now holds the lock
    finally:
        lock.release()
    return exec_id


def load_target(target: str) -> Any:
    """Import ``<module_or_file.py>:<flow_name>`` and return the flow object."""
    from kitaru.errors import KitaruUsageError
    from kitaru.runtime.flow import FlowDefinition

    module_part, sep, attr = target.rpartition(":") if isinstance(target, str) else ("", "", "")
    if not sep or not module_part.strip() or not attr.strip():
        raise KitaruUsageError(
            f"Flow target must use `<module_or_file>:<flow_name>` format (received: {target!r})"
        )
    module_name = module_part.strip()
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser().resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            module_name = path.stem
        elif os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as `python -m` does, for `pkg.module:flow`
        import importlib

        module = importlib.import_module(module_name)
    except KitaruUsageError:
        raise
    except Exception as exc:
        raise KitaruUsageError(f"Unable to import flow module `{module_part}`: {exc}") from exc
    obj: Any = module
    for part in attr.strip().split("."):
        if not hasattr(obj, part):
            raise KitaruUsageError(
                f"Flow target `{target}` was not found: module `{module_name}` has no attribute "
                f"`{attr.strip()}`."
            )
        obj = getattr(obj, part)
    if not isinstance(obj, FlowDefinition):
        raise KitaruUsageError(f"Flow target `{target}` is not a Kitaru flow object (use @flow).")
    return obj


def start_new(flow_def: Any, args: dict[str, Any]) -> str:
    """Create a new execution of ``flow_def`` with keyword ``args`` and start its runner."""
    from kitaru.runtime.execute import first_state, open_store
    from kitaru.runtime.settings import resolve_settings

    settings = resolve_settings(flow_def.defaults, {})
    store = open_store()
    inputs = {"args": [], "kwargs": {k: store.encode(v) for k, v in args.items()}}
    exec_id = store.claim_execution_id()
    lock = store.runner_lock(exec_id).acquire()
    try:
        spec = flow_def.spec(inputs, settings)
        store.create_execution(exec_id, spec, first_state(store, flow_def.name, settings["stack"]))
        try:
            _spawn(store, exec_id, spec, lock.fd)
        except OSError as exc:
            raise KitaruBackendError(f"Failed to start execution '{exec_id}': {exc}") from exc
        os.close(lock.detach())  # close without unlocking: the child now holds the lock
    finally:
        lock.release()
    return exec_id


def _spawn(store: Store, exec_id: str, spec: dict[str, Any], fd: int | None) -> None:
    assert fd is not None
    env = dict(os.environ)
    env["KITARU_PROJECT_DIR"] = str(store.root)
    cwd = spec.get("cwd") if spec.get("cwd") and Path(spec["cwd"]).is_dir() else None
    command = [
        _python(spec),
        "-m",
        "kitaru.runtime.runner",
        exec_id,
        "--lock-fd",
        str(fd),
        "--store",
        str(store.root),
    ]
    launched_runners()  # reap runners that exited, so a long-lived client keeps no zombies
    # Until the runner has the flow imported, its stderr goes to runner.err (a Python that
    # cannot even import kitaru leaves its traceback there); the runner then removes it.
    err = store.open_runner_err(exec_id)
    try:
        proc = subprocess.Popen(
            command,
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    finally:
        os.close(err)
    with _launched_lock:
        _launched.append(proc)
