"""The installed ``kitaru`` in subprocesses: run -> fail -> retry -> wait -> input -> resume ->
replay -> cancel, every ``--output json`` parsed; and the seed page's CLI lines as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

KITARU = Path(sys.executable).parent / "kitaru"

SCRIPT = """
import os

import kitaru
from kitaru import checkpoint, flow


@checkpoint
def research(topic: str) -> str:
    print(f"researching {topic}")
    return f"notes on {topic}"


@checkpoint
def write_draft(notes: str) -> str:
    if os.path.exists("FAIL"):
        raise RuntimeError("flag file present")
    print("drafting")
    return notes.upper()


@flow
def pipeline(topic: str = "AI"):
    draft = write_draft(research(topic))
    ok = kitaru.wait(name="approve", question="Publish?", schema=bool, timeout=0)
    print(f"approved: {ok}")
    return draft if ok else None
"""


def _kitaru(*args: str, cwd: Path, code: int = 0) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env["NO_COLOR"] = "1"
    env["KITARU_INTERACTIVE"] = "0"
    proc = subprocess.run(
        [str(KITARU), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    return docs[0] if len(docs) == 1 else docs


@pytest.mark.skipif(not KITARU.exists(), reason="the kitaru console script is not installed")
def test_lifecycle_end_to_end(project_dir: Path) -> None:
    cwd = project_dir
    (cwd / "agent.py").write_text(SCRIPT, encoding="utf-8")
    assert _kitaru("init", "-o", "json", cwd=cwd)["command"] == "init"

    (cwd / "FAIL").touch()
    doc = _kitaru(
        "run", "agent.py:pipeline", "--args", '{"topic": "AI"}', "-o", "json", cwd=cwd, code=1
    )
    assert doc["command"] == "run"
    exec_id = doc["item"]["exec_id"]
    assert doc["item"]["status"] == "failed"
    assert doc["item"]["failure"]["message"] == "flag file present"

    (cwd / "FAIL").unlink()
    # The retried run stops at a wait: --follow on retry exits 0 only for a completed run.
    docs = _kitaru("executions", "retry", exec_id[:10], "--follow", "-o", "json", cwd=cwd, code=1)
    assert docs[0]["command"] == "executions.retry"
    assert docs[0]["item"]["exec_id"] == exec_id
    assert docs[-1]["event"] == "waiting"
    assert docs[-1]["item"]["wait_name"] == "approve"
    assert "drafting" in [d["item"].get("message") for d in docs[1:]]

    doc = _kitaru("executions", "input", exec_id, "--value", "true", "-o", "json", cwd=cwd)
    assert doc["command"] == "executions.input"
    assert doc["item"]["pending_wait"] is None

    docs = _kitaru("executions", "resume", exec_id, "--follow", "-o", "json", cwd=cwd)
    assert docs[0]["command"] == "executions.resume"
    assert docs[-1]["item"] == {
        "status": "completed",
        "message": "Execution completed successfully",
    }
    assert "approved: True" in [d["item"].get("message") for d in docs[1:]]

    docs = _kitaru(
        "executions", "replay", exec_id, "--from", "write_draft",
        "--overrides", '{"checkpoint.research": "edited"}', "--follow", "-o", "json", cwd=cwd,
        code=1,  # the replay reaches a (new) wait: only a completed run exits 0
    )  # fmt: skip
    assert docs[0]["command"] == "executions.replay"
    replay_id = docs[0]["item"]["exec_id"]
    assert replay_id != exec_id
    assert docs[0]["item"]["original_exec_id"] == exec_id
    assert docs[-1]["event"] == "waiting"

    doc = _kitaru("executions", "cancel", replay_id, "-o", "json", cwd=cwd)
    assert doc["command"] == "executions.cancel"
    assert doc["item"]["status"] == "cancelled"

    doc = _kitaru("executions", "list", "-o", "json", cwd=cwd)
    assert [(i["exec_id"], i["status"]) for i in doc["items"]] == [
        (replay_id, "cancelled"),
        (exec_id, "completed"),
    ]
    doc = _kitaru("executions", "get", exec_id, "-o", "json", cwd=cwd)
    assert [len(c["attempts"]) for c in doc["item"]["checkpoints"]] == [1, 2]
    doc = _kitaru("artifacts", "list", replay_id, "-o", "json", cwd=cwd)
    art = next(a for a in doc["items"] if a["name"] == "write_draft")
    doc = _kitaru("artifacts", "get", art["artifact_id"], "-o", "json", cwd=cwd)
    assert doc["item"]["value"] == "EDITED"
    doc = _kitaru("executions", "logs", exec_id, "-o", "json", cwd=cwd)
    assert doc["count"] == len(doc["items"]) > 0
    error = subprocess.run(
        [str(KITARU), "executions", "retry", exec_id, "-o", "json"],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert error.returncode == 1 and error.stdout == ""
    assert json.loads(error.stderr)["error"]["type"] == "KitaruStateError"
