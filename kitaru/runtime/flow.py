"""``@flow``: the durable outer function, its ``.run()`` and the handle it returns."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kitaru.errors import KitaruContextError, KitaruStateError, KitaruUsageError
from kitaru.models import ExecutionStatus
from kitaru.runtime.checkpoint import normalize_name
from kitaru.runtime.context import current_run, runner_importing
from kitaru.runtime.execute import execute_flow, first_state, open_store
from kitaru.runtime.failure import execution_error
from kitaru.runtime.settings import resolve_settings, validate_layer
from kitaru.store import Store, now_iso

__all__ = ["FlowDefinition", "FlowHandle", "flow", "source_info"]


def source_info(func: Callable[..., Any]) -> dict[str, Any]:
    """Where the flow function can be imported from again (module, file, sys.path entry)."""
    module = func.__module__
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    try:
        file = inspect.getsourcefile(func) or file
    except TypeError:
        pass
    entry = None
    if file:
        path = Path(file).resolve()
        depth = 0 if module == "__main__" else module.count(".") + (path.stem == "__init__")
        entry = str(path.parents[depth])
    try:
        params = [
            {"name": p.name, "kind": p.kind.name}
            for p in inspect.signature(func).parameters.values()
        ]
    except (TypeError, ValueError):
        params = None
    return {
        "module": module,
        "qualname": func.__qualname__,
        "file": str(Path(file).resolve()) if file else None,
        "sys_path_entry": entry,
        "parameters": params,
    }


class FlowHandle:
    """A handle on one execution started by ``flow.run()``."""

    def __init__(self, exec_id: str, store_root: Path) -> None:
        self._exec_id = exec_id
        self._root = store_root

    def __repr__(self) -> str:
        return f"FlowHandle(exec_id={self._exec_id!r})"

    @property
    def exec_id(self) -> str:
        """The execution's id."""
        return self._exec_id

    def _state(self) -> tuple[Store, dict[str, Any]]:
        store = Store.open_at(self._root)
        return store, store.effective_state(store.read_state(self._exec_id))

    @property
    def status(self) -> ExecutionStatus:
        """The execution's current status (read from the store each time)."""
        return ExecutionStatus(self._state()[1]["status"])

    def _outcome(self, store: Store, state: dict[str, Any]) -> Any:
        if state["status"] == "completed":
            ref = state.get("result")
            return store.decode(ref) if ref else None
        raise execution_error(self._exec_id, state)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the execution finishes; return its result or raise its typed error.

        Raises ``KitaruStateError`` when it has settled into ``waiting`` with no runner.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while True:
            store, state = self._state()
            status = state["status"]
            if status in ("completed", "failed", "cancelled"):
                return self._outcome(store, state)
            if status == "waiting" and not store.runner_alive(self._exec_id):
                raise KitaruStateError(waiting_hint(self._exec_id))
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Execution {self._exec_id} is still {status}.")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def get(self) -> Any:
        """Return the result now; raise ``KitaruStateError`` if it is not finished."""
        store, state = self._state()
        if state["status"] not in ("completed", "failed", "cancelled"):
            raise KitaruStateError(
                f"Execution {self._exec_id} is still running (status: {state['status']})."
            )
        return self._outcome(store, state)


def waiting_hint(exec_id: str) -> str:
    """What to run to answer a waiting execution."""
    return (
        f"Execution {exec_id} is waiting for input. Provide it, then resume:\n\n"
        f"  kitaru executions input {exec_id} --value <json>\n"
        f"  kitaru executions resume {exec_id}"
    )


class FlowDefinition:
    """A decorated flow function; start it with ``.run()``."""

    def __init__(self, func: Callable[..., Any], defaults: dict[str, Any]) -> None:
        self.func = func
        self.name = normalize_name(func.__name__, "flow")
        self.defaults = validate_layer(defaults, "@flow")
        functools.update_wrapper(self, func)

    @functools.cached_property
    def source(self) -> dict[str, Any]:
        """Where the runner can import this flow from again (looked up once)."""
        return source_info(self.func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise KitaruUsageError(
            f"Direct flow calls are not supported. Use `{self.name}.run(...)` to start an "
            "execution."
        )

    def run(
        self,
        *args: Any,
        stack: str | None = None,
        image: Any = None,
        cache: bool | None = None,
        retries: int | None = None,
        **kwargs: Any,
    ) -> FlowHandle:
        """Run the flow in this process and return a handle once it finishes or waits."""
        if current_run() is not None:
            raise KitaruContextError(
                "flow.run() cannot be called inside a running flow; call checkpoints instead."
            )
        importing = runner_importing.get()
        if importing is not None:
            raise KitaruContextError(
                f"flow.run() was called while the kitaru runner imported {importing}. Guard it "
                'with `if __name__ == "__main__":` so it runs only when the script is run.'
            )
        run_layer = {"stack": stack, "image": image, "cache": cache, "retries": retries}
        settings = resolve_settings(self.defaults, run_layer)
        store = open_store()
        inputs = {
            "args": [store.encode(a) for a in args],
            "kwargs": {k: store.encode(v) for k, v in kwargs.items()},
        }
        exec_id = store.claim_execution_id()
        with store.runner_lock(exec_id):
            state = first_state(store, self.name, settings["stack"])
            # Its id is returned only when the run settles, so its creation may become durable
            # with the run's first durable write instead of costing a folder fsync of its own.
            store.create_execution(exec_id, self.spec(inputs, settings), state, sync_now=False)
            status = execute_flow(store, exec_id, self.func, args, kwargs, settings)
        if status == "waiting":
            print(waiting_hint(exec_id), file=sys.stderr)
        return FlowHandle(exec_id, store.root)

    def replay(
        self,
        exec_id: str,
        *,
        from_: str,
        overrides: dict[str, Any] | None = None,
        stack: str | None = None,
        image: Any = None,
        cache: bool | None = None,
        retries: int | None = None,
        **flow_inputs: Any,
    ) -> FlowHandle:
        """Replay an execution of this flow into a new one, in this process."""
        from kitaru.runtime.replay import create_replay, decode_inputs, plan_replay

        if current_run() is not None:
            raise KitaruContextError("flow.replay() cannot be called inside a running flow.")
        settings = resolve_settings(
            self.defaults, {"stack": stack, "image": image, "cache": cache, "retries": retries}
        )
        store = Store.open()
        source_id = store.resolve_exec_id(exec_id)
        plan = plan_replay(store, source_id, from_, overrides, flow_inputs)
        if plan.spec["flow_name"] != self.name:
            raise KitaruUsageError(
                f"Execution '{source_id}' is a run of flow '{plan.spec['flow_name']}', not "
                f"'{self.name}'; replay it with that flow or with the client."
            )
        args, kwargs = decode_inputs(store, self.func, plan.inputs)
        new_id = store.claim_execution_id()
        with store.runner_lock(new_id):
            replay = create_replay(store, plan, new_id, {**settings, "durability": None})
            journal = store.list_calls(new_id)
            status = execute_flow(
                store,
                new_id,
                self.func,
                args,
                kwargs,
                settings,
                journal,
                replay=replay,
            )
        if status == "waiting":
            print(waiting_hint(new_id), file=sys.stderr)
        return FlowHandle(new_id, store.root)

    def spec(self, inputs: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "flow_name": self.name,
            "source": dict(self.source),
            "inputs": inputs,
            "settings": {**settings, "durability": None},
            "flow_defaults": dict(self.defaults),
            "created_at": now_iso(),
            "cwd": os.getcwd(),
            "python": sys.executable,
            "original_exec_id": None,
            "replay": None,
        }


def flow(
    func: Callable[..., Any] | None = None,
    /,
    *,
    stack: str | None = None,
    image: Any = None,
    cache: bool | None = None,
    retries: int | None = None,
) -> Any:
    """Mark a function as a durable flow (bare ``@flow`` or with options)."""
    defaults = {"stack": stack, "image": image, "cache": cache, "retries": retries}

    def wrap(f: Callable[..., Any]) -> FlowDefinition:
        return FlowDefinition(f, defaults)

    return wrap(func) if func is not None else wrap
