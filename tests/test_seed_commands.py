"""Every ``kitaru executions|status|stack`` line of the seed page ("Manage Executions with
KitaruClient and CLI"), run as written through the installed ``kitaru`` script, with its exit
code and output checked.

The store holds runs of the project's own examples (``summarize_topic`` and the replay
example's ``content_pipeline``) and of a flow module written into the project folder: a
``content_pipeline`` with the seed's checkpoints ``research``, ``write_draft`` and ``publish``
that print (for ``logs``), fails while a flag file exists (for ``retry``) and can stop at a
wait (for ``list --status waiting --flow content_pipeline``), and an ``approval`` flow that
waits. ``kr-a8f3c2`` is replaced by the id of a real execution of the right kind.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pty_terminal import Terminal

import kitaru
from kitaru.client import KitaruClient
from kitaru.models import Execution
from kitaru.store import Store

KITARU = Path(sys.executable).parent / "kitaru"
ROOT = Path(__file__).resolve().parents[1]
SUMMARIZE = ROOT / "examples/execution_management/client_execution_management.py"
REPLAY = ROOT / "examples/replay/replay_with_overrides.py"
SEED_ID = "kr-a8f3c2"

pytestmark = pytest.mark.skipif(
    not KITARU.exists() or sys.platform == "win32", reason="needs the kitaru script and a pty"
)

# The CLI block of the seed page, verbatim.
SEED_LINES = """
kitaru executions get kr-a8f3c2
kitaru executions get kr-a8f3c2 --output json
kitaru executions list
kitaru executions list --status waiting --flow content_pipeline --limit 20
kitaru executions list --status waiting --output json
kitaru executions logs kr-a8f3c2 --checkpoint write_draft
kitaru executions logs kr-a8f3c2 --output json
kitaru status --output json
kitaru stack list --output json
kitaru executions input kr-a8f3c2 --value true
kitaru executions input kr-a8f3c2 --abort
kitaru executions input kr-a8f3c2 --interactive
kitaru executions input --interactive # sweep all waiting executions
kitaru executions resume kr-a8f3c2
kitaru executions replay kr-a8f3c2 --from write_draft --args '{"topic":"New topic"}' --overrides '{"checkpoint.research":"Edited notes"}'
kitaru executions retry kr-a8f3c2
kitaru executions cancel kr-a8f3c2
"""  # noqa: E501

LINES = SEED_LINES.strip().splitlines()

FLOWS = """
import os

import kitaru
from kitaru import checkpoint, flow

HERE = os.path.dirname(os.path.abspath(__file__))


@checkpoint
def research(topic: str) -> str:
    print(f"research: looking into {topic}")
    return f"notes about {topic}"


@checkpoint
def write_draft(notes: str) -> str:
    if os.path.exists(os.path.join(HERE, "FAIL")):
        raise RuntimeError("flag file present")
    print(f"write_draft: drafting from {notes}")
    return f"Draft from {notes}"


@checkpoint
def publish(draft: str) -> str:
    print(f"publish: {draft}")
    return f"PUBLISHED: {draft}"


@flow
def content_pipeline(topic: str, approve: bool = False) -> str:
    print("pipeline start")
    draft = write_draft(research(topic))
    if approve:
        kitaru.wait(name="approve", question="Publish?", schema=bool, timeout=0)
    return publish(draft)


@flow
def approval(topic: str = "AI"):
    ok = kitaru.wait(name="approve", question="Ship it?", schema=bool, timeout=0)
    print(f"approved: {ok}")
    return ok
"""


def _line(start: str) -> str:
    """The one seed line starting with ``start``."""
    found = [line for line in LINES if line.startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env["NO_COLOR"] = "1"
    return env


def kitaru_line(line: str, exec_id: str | None, cwd: Path, code: int = 0) -> str:
    """Run one seed line (``kr-a8f3c2`` -> ``exec_id``); return stdout after checking it."""
    assert line in LINES, line
    args = shlex.split(line, comments=True)
    args = [exec_id if a == SEED_ID else a for a in args[1:]]
    assert None not in args
    proc = subprocess.run(
        [str(KITARU), *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=30
    )  # on timeout, run() kills the child
    assert proc.returncode == code, (line, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    if code == 0:
        assert "Error" not in proc.stderr, proc.stderr
    return proc.stdout


def _json(stdout: str, command: str) -> dict[str, Any]:
    assert stdout.count("\n") == 1, stdout  # one document, one line
    doc = json.loads(stdout)
    assert doc["command"] == command
    return doc


def _settle(exec_id: str, timeout: float = 20.0) -> Execution:
    """Poll until the execution is completed, failed or cancelled."""
    client = KitaruClient()
    deadline = time.monotonic() + timeout
    while True:
        execution = client.executions.get(exec_id)
        if execution.status.value in ("completed", "failed", "cancelled"):
            return execution
        assert time.monotonic() < deadline, f"{exec_id} still {execution.status.value}"
        time.sleep(0.05)


def _output_of(execution: Execution, checkpoint: str) -> Any:
    call = next(c for c in execution.checkpoints if c.name == checkpoint)
    return call.artifacts[0].load()


class Seed:
    """A store with runs of the examples and of the test's flow module."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        Store.init(folder)
        self.module = f"seedflows_{uuid.uuid4().hex[:10]}.py"
        (folder / self.module).write_text(FLOWS, encoding="utf-8")
        self.client = KitaruClient()

    def run(self, target: str, **args: Any) -> str:
        return self.client.executions.run(target, args=args).exec_id

    def summarize(self) -> str:
        return self.run(f"{SUMMARIZE}:summarize_topic", topic="kitaru")

    def example_pipeline(self) -> str:
        return self.run(f"{REPLAY}:content_pipeline", topic="kitaru")

    def pipeline(self, topic: str, **args: Any) -> str:
        return self.run(f"{self.module}:content_pipeline", topic=topic, **args)

    def approval(self, topic: str) -> str:
        return self.run(f"{self.module}:approval", topic=topic)


@pytest.fixture
def seed(project_dir: Path) -> Seed:
    return Seed(project_dir)


REFERENCE = Path("/work/shared/reference/kitaru-execution-management.txt")


def test_every_seed_line_is_run() -> None:
    """Each seed line appears, as written, in one of the tests below."""
    source = Path(__file__).read_text(encoding="utf-8")
    body = source[source.index("def kitaru_line") :]
    used = {_line(start) for start in re.findall(r'_line\("([^"]+)"\)', body)}
    used |= {text for text in re.findall(r'"(kitaru [^"]+)"', body) if text in LINES}
    assert used == set(LINES)
    assert len(LINES) == 17


@pytest.mark.skipif(not REFERENCE.is_file(), reason="the seed page is not available here")
def test_seed_lines_match_the_page() -> None:
    page = REFERENCE.read_text(encoding="utf-8").splitlines()
    cli = [line for line in page if re.match(r"kitaru (executions|status|stack) ", line)]
    assert len(cli) == len(LINES)
    for on_page, ours in zip(cli, LINES, strict=True):
        assert on_page.startswith(ours)  # the page's last line runs into the next heading


def test_inspection_lines(seed: Seed, project_dir: Path) -> None:
    summarize = seed.summarize()
    example = seed.example_pipeline()
    mine = seed.pipeline("logs")
    other_waiting = seed.approval("other")
    waiting = seed.pipeline("waits", approve=True)
    all_ids = {summarize, example, mine, other_waiting, waiting}
    cwd = project_dir

    # get
    out = kitaru_line("kitaru executions get kr-a8f3c2", summarize, cwd)
    assert out.startswith("Kitaru execution\n")
    assert f"  Execution ID: {summarize}\n" in out
    assert "  Flow: summarize_topic\n" in out
    assert "  Status: completed\n" in out
    assert "  Checkpoints: write_summary (completed)\n" in out

    doc = _json(
        kitaru_line("kitaru executions get kr-a8f3c2 --output json", summarize, cwd),
        "executions.get",
    )
    item = doc["item"]
    assert item["exec_id"] == summarize
    assert item["flow_name"] == "summarize_topic"
    assert item["status"] == "completed"
    assert "summary_context" in [a["name"] for a in item["artifacts"]]

    # list
    out = kitaru_line("kitaru executions list", None, cwd)
    lines = out.splitlines()
    assert lines[0] == "Kitaru executions"
    assert lines[1].split()[:3] == ["ID", "Flow", "Status"]
    assert set(lines[2].split()) == {"-" * len(w) for w in lines[2].split()}
    listed = [line.split()[0] for line in lines[3:]]
    assert listed == [waiting, other_waiting, mine, example, summarize]  # newest first

    out = kitaru_line(_line("kitaru executions list --status waiting --flow"), None, cwd)
    rows = out.splitlines()[3:]
    assert [r.split()[:3] for r in rows] == [[waiting, "content_pipeline", "waiting"]]
    for exec_id in all_ids - {waiting}:  # the waiting `approval` run too
        assert exec_id not in out

    doc = _json(
        kitaru_line("kitaru executions list --status waiting --output json", None, cwd),
        "executions.list",
    )
    assert doc["count"] == len(doc["items"]) == 2
    assert {i["status"] for i in doc["items"]} == {"waiting"}
    assert [i["exec_id"] for i in doc["items"]] == [waiting, other_waiting]
    assert all(i["pending_wait"]["name"] == "approve" for i in doc["items"])

    # logs: a run of the flow whose checkpoints print
    out = kitaru_line(_line("kitaru executions logs kr-a8f3c2 --checkpoint"), mine, cwd)
    assert out == "write_draft: drafting from notes about logs\n"

    doc = _json(
        kitaru_line("kitaru executions logs kr-a8f3c2 --output json", mine, cwd),
        "executions.logs",
    )
    assert doc["count"] == len(doc["items"])
    assert [(e.get("checkpoint_name"), e["message"]) for e in doc["items"]] == [
        (None, "pipeline start"),
        ("research", "research: looking into logs"),
        ("write_draft", "write_draft: drafting from notes about logs"),
        ("publish", "publish: Draft from notes about logs"),
    ]
    assert [e["source"] for e in doc["items"]] == ["runner", "step", "step", "step"]

    # status and stack
    doc = _json(kitaru_line("kitaru status --output json", None, cwd), "status")
    item = doc["item"]
    assert item["sdk_version"] == kitaru.__version__
    assert item["active_stack"] == "local"
    assert Path(item["repository_root"]).resolve() == project_dir.resolve()
    assert item["executions"] == {
        "running": 0,
        "waiting": 2,
        "completed": 3,
        "failed": 0,
        "cancelled": 0,
    }

    doc = _json(kitaru_line("kitaru stack list --output json", None, cwd), "stack.list")
    assert doc["items"][0]["name"] == "local"
    assert doc["items"][0]["is_active"] is True
    assert [i for i in doc["items"] if i["is_active"]] == [doc["items"][0]]


def test_input_value_then_resume(seed: Seed, project_dir: Path) -> None:
    exec_id = seed.pipeline("approve me", approve=True)
    out = kitaru_line("kitaru executions input kr-a8f3c2 --value true", exec_id, project_dir)
    assert out == f"Resolved wait input for execution: {exec_id}\n  Status: waiting\n"
    execution = seed.client.executions.get(exec_id)
    assert execution.status.value == "waiting"  # the runner has exited: resume is next
    assert execution.pending_wait is None
    assert seed.client.executions.pending_waits(exec_id) == []

    out = kitaru_line("kitaru executions resume kr-a8f3c2", exec_id, project_dir)
    first, status = out.splitlines()
    assert first == f"Resumed execution: {exec_id}"
    assert status in ("  Status: running", "  Status: completed")
    execution = _settle(exec_id)
    assert execution.status.value == "completed"
    assert _output_of(execution, "publish") == "PUBLISHED: Draft from notes about approve me"
    messages = [e.message for e in seed.client.executions.logs(exec_id)]
    assert "publish: Draft from notes about approve me" in messages


def test_input_abort_and_cancel(seed: Seed, project_dir: Path) -> None:
    aborted = seed.approval("abort")
    cancelled = seed.pipeline("cancel", approve=True)
    out = kitaru_line("kitaru executions input kr-a8f3c2 --abort", aborted, project_dir)
    assert out == f"Aborted wait for execution: {aborted}\n  Status: cancelled\n"
    assert seed.client.executions.get(aborted).status.value == "cancelled"

    out = kitaru_line("kitaru executions cancel kr-a8f3c2", cancelled, project_dir)
    assert out == f"Cancelled execution: {cancelled}\n  Status: cancelled\n"
    execution = seed.client.executions.get(cancelled)
    assert execution.status.value == "cancelled"
    assert execution.pending_wait is None


def test_replay_with_edited_notes(seed: Seed, project_dir: Path) -> None:
    source = seed.example_pipeline()
    out = kitaru_line(_line("kitaru executions replay"), source, project_dir)
    first, status = out.splitlines()
    assert first.startswith("Replayed execution: kr-")
    new_id = first.removeprefix("Replayed execution: ")
    assert new_id != source
    assert status in ("  Status: running", "  Status: completed")
    execution = _settle(new_id)
    assert execution.status.value == "completed", execution.failure
    assert execution.original_exec_id == source
    assert _output_of(execution, "publish") == "PUBLISHED: Draft from Edited notes"
    original = seed.client.executions.get(source)
    assert _output_of(original, "publish") == "PUBLISHED: Draft from notes about kitaru"


def test_retry_of_a_failed_run(seed: Seed, project_dir: Path) -> None:
    (project_dir / "FAIL").touch()
    failed = seed.pipeline("retry me")
    execution = seed.client.executions.get(failed)
    assert execution.status.value == "failed"
    assert execution.failure.message == "flag file present"
    (project_dir / "FAIL").unlink()

    out = kitaru_line("kitaru executions retry kr-a8f3c2", failed, project_dir)
    first, status = out.splitlines()
    assert first == f"Retried execution: {failed}"
    assert status in ("  Status: running", "  Status: completed")
    execution = _settle(failed)
    assert execution.status.value == "completed", execution.failure
    assert _output_of(execution, "publish") == "PUBLISHED: Draft from notes about retry me"
    draft = next(c for c in execution.checkpoints if c.name == "write_draft")
    assert len(draft.attempts) == 2


# -- interactive lines, on a pseudo-terminal -----------------------------------------------------


def _terminal(line: str, exec_id: str | None, cwd: Path) -> Terminal:
    assert line in LINES, line
    args = shlex.split(line, comments=True)
    return Terminal([exec_id if a == SEED_ID else a for a in args[1:]], cwd)


def test_interactive_lines(seed: Seed, project_dir: Path) -> None:
    one = seed.approval("one")
    two = seed.pipeline("two", approve=True)

    term = _terminal("kitaru executions input kr-a8f3c2 --interactive", one, project_dir)
    try:
        term.expect("Action [c=continue, a=abort, s=skip, q=quit]: ")
        assert "[1/1]" in term.text and f"  Execution: {one}" in term.text
        assert "  Question: Ship it?" in term.text
        term.send("c")
        term.expect("JSON value for result (empty for null): ")
        term.send("true")
        term.expect(f"Resolved wait input for execution: {one}")
        assert term.finish() == 0, term.text
    finally:
        term.close()
    assert seed.client.executions.pending_waits(one) == []
    assert seed.client.executions.pending_waits(two)

    three = seed.approval("three")  # newest: the sweep shows it first, then `two`
    term = _terminal(_line("kitaru executions input --interactive"), None, project_dir)
    try:
        term.expect("Action [c=continue, a=abort, s=skip, q=quit]: ")
        assert "[1/2]" in term.text and f"  Execution: {three}" in term.text
        term.send("c")
        term.expect("JSON value for result (empty for null): ")
        term.send("true")
        term.expect(f"Resolved wait input for execution: {three}")
        term.expect("[2/2]")
        term.expect(f"  Execution: {two}")
        term.expect("Action")
        term.send("q")
        assert term.finish() == 0, term.text
    finally:
        term.close()
    assert seed.client.executions.pending_waits(three) == []
    assert [w.name for w in seed.client.executions.pending_waits(two)] == ["approve"]
    for exec_id in (one, two, three):
        assert seed.client.executions.get(exec_id).status.value == "waiting"
