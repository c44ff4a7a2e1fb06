"""Build the example store `.kitaru-sample/` from the project's own example flows.

    make sample          # or: python examples/sample_store.py .kitaru-sample

It holds a completed run with artifacts and logs, a failed run with retried attempts, a waiting
run with a pending wait, a cancelled run, and a replay of the completed run. Explore it with
`kitaru --project .kitaru-sample executions list`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import kitaru
from kitaru import checkpoint, flow

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "execution_management"), str(HERE / "replay")]

README = """\
# `.kitaru-sample/`: an example Kitaru store

Made by `make sample` from the project's example flows; every file is plain JSON, YAML or JSONL.

    kitaru --project .kitaru-sample executions list
    kitaru --project .kitaru-sample executions get <id>
    kitaru --project .kitaru-sample executions logs <id>
    jq .status .kitaru-sample/executions/*/state.json

It holds: a completed run with artifacts and logs (`summarize_topic`), a failed run whose
checkpoint was retried (`flaky_report`), a run waiting for input (`approval_gate`), a cancelled
run (`approval_gate`), and a replay of a completed run with an edited checkpoint
(`content_pipeline`). See docs/store-format.md for what each file means.
"""


@checkpoint(retries=2)
def fetch_report(source: str) -> str:
    print(f"fetching {source}")
    raise ConnectionError(f"{source} did not answer")


@flow
def flaky_report(source: str) -> str:
    return fetch_report(source)


@checkpoint
def prepare(change: str) -> str:
    print(f"prepared {change}")
    return f"plan for {change}"


@flow
def approval_gate(change: str) -> str:
    plan = prepare(change)
    approved = kitaru.wait(name="approve", schema=bool, question=f"Apply {plan}?", timeout=0)
    return f"applied {change}" if approved else f"skipped {change}"


def build(target: Path) -> None:
    """Run the example flows in a fresh project and copy its store to ``target``."""
    import client_execution_management
    import replay_with_overrides

    work = Path(tempfile.mkdtemp(prefix="kitaru-sample-"))
    previous = os.getcwd()
    os.environ["KITARU_PROJECT_DIR"] = str(work)
    os.chdir(work)
    try:
        client = kitaru.KitaruClient()
        client_execution_management.summarize_topic.run("kitaru").wait()
        try:
            flaky_report.run("https://example.invalid/report").wait()
        except kitaru.KitaruExecutionError:
            pass
        approval_gate.run("schema migration")
        cancelled = approval_gate.run("cache purge")
        client.executions.cancel(cancelled.exec_id)
        pipeline = replay_with_overrides.content_pipeline
        source = pipeline.run("kitaru")
        pipeline.replay(
            source.exec_id,
            from_="write_draft",
            overrides={"checkpoint.research": "edited notes for kitaru"},
        ).wait()
        _copy_store(work / ".kitaru", target)
    finally:
        os.chdir(previous)
        shutil.rmtree(work, ignore_errors=True)


def _copy_store(store: Path, target: Path) -> None:
    """Copy the store without lock files or .gitignore (the sample is committed)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        store, target, ignore=shutil.ignore_patterns("lock", "runner.lock", ".gitignore")
    )
    (target / "README.md").write_text(README)


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else ".kitaru-sample").resolve())
