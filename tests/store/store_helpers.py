"""Shared helpers for the store tests (imported by the tests and by child processes)."""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from kitaru.store import Store, now_iso

__all__ = ["add_call", "bump_counter", "make_execution", "rewrite_loop", "torture_loop"]


def make_execution(store: Store, *, status: str = "completed", flow: str = "demo") -> str:
    """Create one execution with the given stored status and return its id."""
    exec_id = store.claim_execution_id()
    spec = {
        "flow_name": flow,
        "source": {"module": "demo", "qualname": flow},
        "inputs": {},
        "settings": {},
        "created_at": now_iso(),
    }
    state = {
        "status": status,
        "flow_name": flow,
        "created_at": now_iso(),
        "status_reason": None,
        "failure": None,
        "result": None,
        "metadata": {},
        "cancel_requested": False,
        "runner": None,
    }
    store.create_execution(exec_id, spec, state)
    return exec_id


def add_call(store: Store, exec_id: str, seq: int, value: Any, name: str = "step") -> dict:
    """Write a completed checkpoint call whose artifact holds ``value``; return the record."""
    record = {
        "seq": seq,
        "call_id": f"{exec_id}.c{seq}",
        "name": name,
        "invocation_id": f"{name}_{seq}",
        "checkpoint_type": None,
        "status": "completed",
        "started_at": now_iso(),
        "ended_at": now_iso(),
        "attempts": [],
        "artifacts": [
            {
                "artifact_id": f"{exec_id}.a{seq}.0",
                "name": "output",
                "kind": "output",
                "save_type": "step_output",
                "metadata": {},
                "value": store.encode(value),
            }
        ],
        "metadata": {},
        "original_call_id": None,
        "cached_from": None,
        "cache_key": None,
        "parent_call_ids": [],
    }
    store.write_call(exec_id, record)
    return record


def bump_counter(root: str, exec_id: str, times: int) -> None:
    """Child process: ``times`` locked read-modify-write increments of a counter."""
    store = Store.open_at(Path(root))

    def inc(state: dict) -> dict:
        state["metadata"] = {
            **state["metadata"],
            "counter": state["metadata"].get("counter", 0) + 1,
        }
        return state

    for _ in range(times):
        store.update_state(exec_id, inc)


def rewrite_loop(path: str) -> None:
    """Child process: rewrite one record forever, alternating 100 B and 50 KB versions."""
    from kitaru.store.records import write_json_record

    small = {"schema_version": 1, "kind": "small", "pad": "s" * 40}
    large = {"schema_version": 1, "kind": "large", "pad": "L" * 50_000}
    target = Path(path)
    write_json_record(target, small, durable=False)
    print("ready", flush=True)
    while True:
        write_json_record(target, large, durable=False)
        write_json_record(target, small, durable=False)


def torture_loop(root: str, seed: int) -> None:
    """Child process: write executions, calls, blobs, cache entries, state and logs forever."""
    rng = random.Random(seed)
    store = Store.open_at(Path(root))
    exec_id = make_execution(store, status="running")
    print("ready", flush=True)
    seq = 0
    while True:
        seq += 1
        size = rng.choice([10, 20_000, 100_000])
        add_call(store, exec_id, seq, os.urandom(size).hex()[:size])
        key = hashlib.sha256(f"{seed}-{seq}".encode()).hexdigest()
        store.cache_put(key, exec_id, seq, f"step_{seq}")
        store.append_log(exec_id, {"message": "x" * rng.randint(1, 5000), "t": time.time()})
        new = rng.choice(["running", "waiting", "running"])
        store.update_state(exec_id, lambda s, new=new: {**s, "status": new})
        if rng.random() < 0.2:
            exec_id = make_execution(store, status="running")


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "rewrite":
        rewrite_loop(args[0])
    elif kind == "torture":
        torture_loop(args[0], int(args[1]))
