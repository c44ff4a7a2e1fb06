"""Replay a finished execution from a checkpoint, with an edited checkpoint output.

uv run examples/replay/replay_with_overrides.py
"""

from __future__ import annotations

import time

import kitaru
from kitaru import checkpoint, flow
from kitaru.client import ExecutionStatus

TERMINAL = {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}


@checkpoint
def research(topic: str) -> str:
    return f"notes about {topic}"


@checkpoint
def write_draft(notes: str) -> str:
    return f"Draft from {notes}"


@checkpoint
def publish(draft: str) -> str:
    return f"PUBLISHED: {draft}"


@flow
def content_pipeline(topic: str) -> str:
    notes = research(topic)
    draft = write_draft(notes)
    return publish(draft)


def run_workflow(topic: str = "kitaru") -> tuple[str, str]:
    """Run the pipeline, replay it with edited research notes, return both results."""
    client = kitaru.KitaruClient()
    source_id = content_pipeline.run(topic).exec_id
    original = client.executions.get(source_id)

    replayed = client.executions.replay(
        source_id,
        from_="write_draft",
        overrides={"checkpoint.research": f"edited notes for {topic}"},
    )
    deadline = time.monotonic() + 60
    execution = client.executions.get(replayed.exec_id)
    while execution.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.1)
        execution = client.executions.get(replayed.exec_id)

    def published(e: kitaru.client.Execution) -> str:
        return next(cp for cp in e.checkpoints if cp.name == "publish").artifacts[0].load()

    return published(original), published(execution)


if __name__ == "__main__":
    before, after = run_workflow()
    print(f"Original: {before}")
    print(f"Replayed: {after}")
