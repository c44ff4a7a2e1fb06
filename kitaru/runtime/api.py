"""``kitaru.log``, ``kitaru.save`` and ``kitaru.load``: what flow and checkpoint code calls."""

from __future__ import annotations

from typing import Any

import orjson

from kitaru.errors import KitaruContextError, KitaruRuntimeError, KitaruUsageError
from kitaru.runtime.context import current_call, current_run
from kitaru.runtime.engine import merge_metadata
from kitaru.store.layout import validate_name

__all__ = ["ARTIFACT_KINDS", "load", "log", "save"]

ARTIFACT_KINDS = ("prompt", "response", "context", "input", "output", "blob")


def log(**values: Any) -> None:
    """Attach metadata to the current checkpoint call, or in the flow body to the execution.

    Dict values merge with earlier ones; anything else is last-write-wins.
    """
    run = current_run()
    if run is None:
        raise KitaruContextError("kitaru.log() can only be called inside a @flow.")
    if not values:
        return
    # Metadata is stored as JSON: values JSON cannot hold are kept as their repr.
    values = orjson.loads(orjson.dumps(values, default=repr, option=orjson.OPT_NON_STR_KEYS))
    scope = current_call()
    if scope is not None:
        merge_metadata(scope.metadata, values)
    else:
        run.log_execution(values)


def save(name: str, value: Any, *, type: str = "output", tags: list[str] | None = None) -> None:
    """Store ``value`` as a named artifact of the current checkpoint call."""
    scope = current_call()
    if scope is None:
        raise KitaruContextError("kitaru.save() can only be called inside a @checkpoint.")
    validate_name("artifact name", name)
    kind = str(type).strip().lower()
    if kind not in ARTIFACT_KINDS:
        raise KitaruUsageError(
            f"Invalid artifact type {type!r}. Expected one of: {', '.join(ARTIFACT_KINDS)}."
        )
    ref = scope.run.store.encode(value)
    metadata: dict[str, Any] = {"kitaru_artifact_type": kind}
    if tags:
        metadata["tags"] = [str(t) for t in tags]
    scope.artifacts.append(
        {
            "artifact_id": f"{scope.run.exec_id}.a{scope.seq}.{len(scope.artifacts) + 1}",
            "name": name,
            "kind": kind,
            "save_type": "manual",
            "metadata": metadata,
            "value": ref,
        }
    )


def _matches(call: dict[str, Any], art: dict[str, Any], name: str) -> bool:
    if art.get("save_type") == "manual":
        return art["name"] == name
    return name in (art["name"], call["name"], call["invocation_id"])


def load(exec_id: str, name: str) -> Any:
    """Load a named artifact (or a checkpoint's output by checkpoint name) of an execution."""
    scope = current_call()
    if scope is None:
        raise KitaruContextError("kitaru.load() can only be called inside a @checkpoint.")
    store = scope.run.store
    exec_id = store.resolve_exec_id(exec_id)
    found = [
        (call, art)
        for call in store.list_calls(exec_id)
        for art in call["artifacts"]
        if _matches(call, art, name)
    ]
    if not found:
        raise KitaruRuntimeError(f"No artifact named '{name}' in execution '{exec_id}'.")
    if len(found) > 1:
        listed = "; ".join(
            f"step={c['invocation_id']}, artifact={a['name']}, save_type={a['save_type']}"
            for c, a in found
        )
        raise KitaruRuntimeError(
            f"Artifact name '{name}' is ambiguous in execution '{exec_id}': {listed}."
        )
    return store.decode(found[0][1]["value"])
