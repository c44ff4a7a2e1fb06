"""Replay: a new execution from an old one, reusing the checkpoints before a boundary.

Calls before the boundary are copied into the new execution (``original_call_id`` names the
source call), so the re-run body reuses them like any recorded call. An overridden checkpoint is
recorded as completed with the override as its output. The boundary call and everything after
it run again, never from the cache; waits are never carried over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kitaru.errors import KitaruStateError, KitaruUsageError
from kitaru.runtime.execute import first_state
from kitaru.store import Store, now_iso

__all__ = ["USE_DEFAULT", "ReplayPlan", "create_replay", "decode_inputs", "plan_replay"]

# An input position the source run left to the parameter's default.
USE_DEFAULT = {"codec": "default"}

_PREFIX = "checkpoint."


@dataclass
class ReplayPlan:
    """What a replay will reuse, override and run again."""

    source_id: str
    from_: str
    boundary: int
    reuse: list[dict[str, Any]]
    overrides: dict[int, tuple[dict[str, Any], Any]]
    spec: dict[str, Any]
    inputs: dict[str, Any]


def _select(calls: list[dict[str, Any]], selector: str) -> dict[str, Any]:
    matches = [c for c in calls if selector in (c["name"], c["invocation_id"], c["call_id"])]
    if len(matches) > 1:
        raise KitaruStateError(
            f"Replay selector is ambiguous for checkpoint '{selector}'. "
            "Use a checkpoint call ID instead."
        )
    if not matches:
        available = ", ".join(sorted({c["invocation_id"] for c in calls}))
        raise KitaruStateError(
            f"Unknown checkpoint selector '{selector}'. Available checkpoints: {available}."
        )
    return matches[0]


def _override_selectors(overrides: dict[str, Any] | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise KitaruUsageError("`overrides` must be a dict of `checkpoint.<selector>` keys.")
    out = {}
    for key, value in overrides.items():
        if isinstance(key, str) and key.startswith("wait."):
            raise KitaruUsageError(
                "Wait overrides (`wait.*`) are not supported in replay. Waits reached in the "
                "replay are new; answer them with `kitaru executions input`."
            )
        if not isinstance(key, str) or not key.startswith(_PREFIX):
            raise KitaruUsageError(
                f"Override keys must start with `checkpoint.`. Received: {key!r}."
            )
        selector = key[len(_PREFIX) :].strip()
        if not selector:
            raise KitaruUsageError(
                f"Override key {key!r} needs a checkpoint selector after `checkpoint.`."
            )
        out[selector] = value
    return out


def _apply_inputs(
    store: Store, spec: dict[str, Any], flow_inputs: dict[str, Any]
) -> dict[str, Any]:
    inputs = spec["inputs"]
    args = list(inputs.get("args", []))
    kwargs = dict(inputs.get("kwargs", {}))
    params = spec["source"].get("parameters")
    for name, value in flow_inputs.items():
        if params is not None:
            names = [p["name"] for p in params if p["kind"] != "VAR_KEYWORD"]
            open_kwargs = any(p["kind"] == "VAR_KEYWORD" for p in params)
            if name not in names and not open_kwargs:
                raise KitaruUsageError(
                    f"Unknown flow input '{name}'. The flow takes: {', '.join(names) or 'nothing'}."
                )
            positional = [
                p["name"]
                for p in params
                if p["kind"] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")
            ]
            if any(p["name"] == name and p["kind"] == "POSITIONAL_ONLY" for p in params):
                # Positions the source run left to their defaults keep them.
                index = positional.index(name)
                args.extend(dict(USE_DEFAULT) for _ in range(index + 1 - len(args)))
            if name in positional and positional.index(name) < len(args):
                args[positional.index(name)] = store.encode(value)
                continue
        kwargs[name] = store.encode(value)
    return {"args": args, "kwargs": kwargs}


def decode_inputs(store: Store, func: Any, inputs: dict[str, Any]) -> tuple[tuple, dict]:
    """The positional and keyword arguments recorded in ``inputs``, for calling ``func``."""
    refs = inputs.get("args", [])
    args = []
    if any(ref == USE_DEFAULT for ref in refs):
        import inspect

        params = list(inspect.signature(func).parameters.values())
        args = [
            params[i].default if ref == USE_DEFAULT else store.decode(ref)
            for i, ref in enumerate(refs)
        ]
    else:
        args = [store.decode(ref) for ref in refs]
    kwargs = {k: store.decode(ref) for k, ref in inputs.get("kwargs", {}).items()}
    return tuple(args), kwargs


def plan_replay(
    store: Store,
    source_id: str,
    from_: Any,
    overrides: dict[str, Any] | None,
    flow_inputs: dict[str, Any],
) -> ReplayPlan:
    """Check a replay request (upstream's order of checks) and plan it."""
    state = store.effective_state(store.read_state(source_id))
    if state["status"] == "running":
        raise KitaruStateError(
            "Replay requires a non-running source execution. "
            f"Execution '{source_id}' is currently 'running'."
        )
    calls = store.list_calls(source_id)
    if not calls:
        raise KitaruStateError(f"Execution '{source_id}' has no checkpoint history to replay.")
    if not isinstance(from_, str) or not from_.strip():
        raise KitaruUsageError("`from_` must be a non-empty selector.")
    selectors = _override_selectors(overrides)
    boundary = _select(calls, from_.strip())["seq"]
    chosen: dict[int, tuple[dict[str, Any], Any]] = {}
    for selector, value in selectors.items():
        call = _select(calls, selector)
        chosen[call["seq"]] = (call, value)
        boundary = min(boundary, call["seq"])
    spec = store.read_spec(source_id)
    reuse = [c for c in calls if c["seq"] < boundary and c["status"] == "completed"]
    return ReplayPlan(
        source_id,
        from_.strip(),
        boundary,
        reuse,
        chosen,
        spec,
        _apply_inputs(store, spec, flow_inputs),
    )


def _copy(record: dict[str, Any], exec_id: str) -> dict[str, Any]:
    seq = record["seq"]
    out = {k: v for k, v in record.items() if k != "schema_version"}
    out.update(
        call_id=f"{exec_id}.c{seq}",
        original_call_id=record["call_id"],
        attempts=[
            {**a, "attempt_id": f"{exec_id}.c{seq}.{i}"}
            for i, a in enumerate(record["attempts"], 1)
        ],
        artifacts=[
            {**a, "artifact_id": f"{exec_id}.a{seq}.{i}"} for i, a in enumerate(record["artifacts"])
        ],
    )
    return out


def create_replay(
    store: Store, plan: ReplayPlan, exec_id: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """Write the new execution (the caller holds its runner lock); return its replay plan."""
    now = now_iso()
    spec = {k: v for k, v in plan.spec.items() if k not in ("schema_version", "exec_id")}
    spec.update(
        inputs=plan.inputs,
        created_at=now,
        settings=settings,
        original_exec_id=plan.source_id,
        replay={
            "source_exec_id": plan.source_id,
            "from": plan.from_,
            "boundary_seq": plan.boundary,
            # Applied when the body reaches the call (matched by invocation id, not position,
            # so a body that branches differently after the boundary still gets them).
            "overrides": {
                record["invocation_id"]: {
                    "name": record["name"],
                    "source_call_id": record["call_id"],
                    "value": store.encode(value),
                }
                for record, value in plan.overrides.values()
            },
        },
    )
    state = first_state(store, spec["flow_name"], settings.get("stack", "local"), plan.source_id)
    store.create_execution(exec_id, spec, state)
    with store.locked(exec_id):
        for record in plan.reuse:
            store.write_call(exec_id, _copy(record, exec_id))
    return spec["replay"]
