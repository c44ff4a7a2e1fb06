"""Flows used by the wait and replay tests.

They live in an importable module (not in the test files) so that a detached runner started by
``resume`` or ``replay`` can import them again. Side effects are appended to ``effects.log`` in
the working directory (the test's project folder), so that runs in other processes count too.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, field_validator

import kitaru
from kitaru import checkpoint, flow

EFFECTS = "effects.log"


def effect(tag: str) -> None:
    """Record that a checkpoint body really ran (one line per run)."""
    with open(Path.cwd() / EFFECTS, "a") as fh:
        fh.write(tag + "\n")


def effects() -> list[str]:
    """The side effects recorded so far, in order."""
    path = Path.cwd() / EFFECTS
    return path.read_text().split() if path.exists() else []


class Release(BaseModel):
    notes: str
    major_version: int


class StrictRelease(BaseModel):
    """Passes the JSON Schema with any string; the validator refuses ``notes == "bad"``."""

    notes: str

    @field_validator("notes")
    @classmethod
    def not_bad(cls, value: str) -> str:
        if value == "bad":
            raise ValueError("notes must not be 'bad'")
        return value


RAW_SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
}

SCHEMAS: dict[str, Any] = {
    "none": None,
    "bool": bool,
    "int": int,
    "float": float,
    "str": str,
    "list": list,
    "dict": dict,
    "model": Release,
    "strict": StrictRelease,
    "raw": RAW_SCHEMA,
}


@checkpoint
def after_wait(kind: str) -> float:
    """The checkpoint after the wait: records that it ran and when."""
    effect(f"after:{kind}")
    return time.time()


@flow
def gate_flow(kind: str = "bool", timeout: float = 0, name: str = "approve") -> dict[str, Any]:
    """One wait of schema ``SCHEMAS[kind]`` then one checkpoint."""
    value = kitaru.wait(
        schema=SCHEMAS[kind],
        name=name,
        question=f"Answer a {kind}",
        timeout=timeout,
        metadata={"kind": kind, "nested": {"a": [1, 2]}},
    )
    stamp = after_wait(kind)
    return {"type": type(value).__name__, "value": value, "stamp": stamp}


@flow
def two_waits_flow(timeout: float = 0) -> list[Any]:
    """Two waits with the same name (the second gets invocation id ``ask_2``)."""
    first = kitaru.wait(schema=int, name="ask", timeout=timeout)
    second = kitaru.wait(schema=int, name="ask", timeout=timeout)
    return [first, second, after_wait("two")]


@flow
def only_wait_flow() -> Any:
    """A wait and no checkpoint at all."""
    return kitaru.wait(schema=bool, name="approve", timeout=0)


# -- replay --------------------------------------------------------------------------------------


@checkpoint
def fetch(topic: str) -> str:
    effect("fetch")
    return f"notes about {topic}"


@checkpoint
def draft(notes: str) -> str:
    effect("draft")
    return f"Draft from {notes}"


@checkpoint
def publish(text: str) -> str:
    effect("publish")
    return f"PUBLISHED: {text}"


@flow
def pipeline(topic: str, style: str = "plain") -> str:
    """fetch, draft, draft (``draft_2``), publish."""
    notes = fetch(topic)
    first = draft(notes)
    second = draft(notes + " again")
    return publish(f"{first} | {second} | {style}")


@checkpoint
def check(fail: bool) -> str:
    effect("check")
    if fail:
        raise RuntimeError("check failed on purpose")
    return "checked"


@flow
def failing_pipeline(topic: str, fail: bool = True) -> str:
    notes = fetch(topic)
    return f"{notes} / {check(fail)}"


@flow
def approval_pipeline(topic: str, timeout: float = 0) -> str:
    """fetch, a bool wait ``approve``, publish."""
    notes = fetch(topic)
    approved = kitaru.wait(schema=bool, name="approve", timeout=timeout)
    return publish(f"{notes} approved={approved}")


@flow
def posonly_pipeline(a: str, b: str = "B", /) -> str:
    return publish(fetch(a) + b)


BLOCK = threading.Event()
BLOCKED = threading.Event()


@checkpoint
def blocker() -> str:
    BLOCKED.set()
    BLOCK.wait(30)
    return "unblocked"


@flow
def blocking_flow() -> str:
    first = fetch("x")
    return first + blocker()


@flow
def block_then_wait_flow() -> Any:
    """A checkpoint that blocks until ``BLOCK`` is set, then a bool wait ``approve``."""
    blocker()
    return kitaru.wait(schema=bool, name="approve", timeout=30)


@checkpoint
def bonus(notes: str) -> str:
    return f"{notes} +bonus"


@checkpoint
def write(notes: str) -> str:
    return f"draft of {notes}"


@flow
def branching_pipeline(topic: str) -> str:
    notes = fetch(topic)
    if topic == "extra":
        notes = bonus(notes)
    return publish(write(notes))
