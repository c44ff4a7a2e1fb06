"""Run a flow, then inspect it with KitaruClient: status, latest, artifacts.

uv run examples/execution_management/client_execution_management.py
"""

from __future__ import annotations

from typing import Any

import kitaru
from kitaru import checkpoint, flow


@checkpoint
def write_summary(topic: str) -> str:
    summary = f"Summary for {topic}."
    kitaru.save("summary_context", {"topic": topic, "summary": summary}, type="context")
    return summary


@flow
def summarize_topic(topic: str) -> str:
    return write_summary(topic)


def run_workflow(topic: str = "kitaru") -> tuple[str, str, Any, list[str], Any]:
    """Run the flow and read it back through the client."""
    handle = summarize_topic.run(topic)
    result = handle.wait()

    client = kitaru.KitaruClient()
    execution = client.executions.get(handle.exec_id)
    latest = client.executions.latest(flow="summarize_topic")
    assert latest.exec_id == handle.exec_id

    artifacts = client.artifacts.list(handle.exec_id)
    artifact_names = [artifact.name for artifact in artifacts]
    context = client.artifacts.list(handle.exec_id, name="summary_context", limit=1)[0]
    loaded_context = context.load()
    return handle.exec_id, execution.status.value, result, artifact_names, loaded_context


def main() -> None:
    exec_id, status, result, artifact_names, loaded_context = run_workflow()
    print(f"Execution: {exec_id}")
    print(f"Status: {status}")
    print(f"Result: {result}")
    print(f"Artifacts: {', '.join(artifact_names)}")
    print(f"Loaded summary_context: {loaded_context}")


if __name__ == "__main__":
    main()
