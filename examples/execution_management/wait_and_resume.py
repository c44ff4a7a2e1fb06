"""Pause a flow for human approval and typed release details, then resume it.

    uv run examples/execution_management/wait_and_resume.py

In a terminal the waits prompt in place; elsewhere answer them from another shell with
`kitaru executions input <id> --value true` and `kitaru executions resume <id>`.
"""

from __future__ import annotations

from pydantic import BaseModel

import kitaru
from kitaru import checkpoint, flow


class ReleaseDetails(BaseModel):
    notes: str
    major_version: int


@checkpoint
def draft_release_note(topic: str) -> str:
    return f"Draft about {topic}."


@checkpoint
def publish_release_note(draft: str, details: ReleaseDetails) -> str:
    return f"PUBLISHED v{details.major_version}: {draft}\nNotes: {details.notes}"


@flow
def wait_for_approval_flow(topic: str) -> str:
    draft = draft_release_note(topic)
    exec_id = kitaru.runtime._get_current_execution_id()
    print(f"To approve from another shell: kitaru executions input {exec_id} --value true")
    print(f"Then, if the run has stopped waiting: kitaru executions resume {exec_id}")
    approved = kitaru.wait(
        name="approve_release",
        schema=bool,
        question=f"Publish the release note for {topic}?",
        timeout=3600,
        metadata={"topic": topic},
    )
    if not approved:
        return f"REJECTED: {topic}"
    details = kitaru.wait(
        name="release_details",
        schema=ReleaseDetails,
        question="Release notes and major version?",
        timeout=60,
        metadata={"topic": topic},
    )
    return publish_release_note(draft, details)


def run_workflow(topic: str = "v1.0") -> str:
    """Run the flow and return its result."""
    return wait_for_approval_flow.run(topic).wait()


if __name__ == "__main__":
    print(run_workflow())
