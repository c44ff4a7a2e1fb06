"""``kitaru run``, ``kitaru artifacts``, ``executions list --since``, get details, completion."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from cli_helpers import Invoke, make_execution, parse, wait_settled

from kitaru.cli import _params, cli
from kitaru.store import Store

# -- run ----------------------------------------------------------------------------------------


def test_run_foreground(invoke: Invoke, flows: str) -> None:
    result = invoke("run", f"{flows}:content_pipeline", "--args", '{"topic": "AI"}')
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[:3] == ["pipeline start", "researching AI", "drafting"]  # the flow's prints
    exec_id = out[3].removeprefix("Started execution: ")
    assert out[3:] == [f"Started execution: {exec_id}", "  Status: completed"]


def test_run_json_keeps_stdout_one_document(invoke: Invoke, flows: str) -> None:
    result = invoke("run", f"{flows}:content_pipeline", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = parse(result.stdout)
    assert doc["command"] == "run"
    assert doc["item"]["status"] == "completed"
    assert "pipeline start" in result.stderr


def test_run_failed_and_waiting(invoke: Invoke, flows: str, project_dir: Path) -> None:
    (project_dir / "FAIL").touch()
    result = invoke("run", f"{flows}:content_pipeline")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-2:] == ["  Status: failed", "  Failure: flag file present"]
    result = invoke("run", f"{flows}:approval")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "  Status: waiting"


def test_run_detached(invoke: Invoke, flows: str) -> None:
    result = invoke("run", f"{flows}:ticker", "--args", '{"n": 2}', "--detach", "-o", "json")
    assert result.exit_code == 0, result.stderr
    item = parse(result.stdout)["item"]
    assert item["status"] in ("running", "completed")
    assert wait_settled(item["exec_id"]).status.value == "completed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nocolon"], "Flow target must use `<module_or_file>:<flow_name>` format"),
        (["missing.py:flow"], "Unable to import flow module `missing.py`"),
        (["FLOWS:nope"], "was not found"),
        (["FLOWS:content_pipeline", "--args", "[1]"], "`--args` must be a JSON object"),
        (["FLOWS:content_pipeline", "--args", "{"], "Invalid JSON for `--args`"),
    ],
)
def test_run_errors(invoke: Invoke, flows: str, args: list[str], message: str) -> None:
    args = [a.replace("FLOWS", flows) for a in args]
    result = invoke("run", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr


# -- artifacts ----------------------------------------------------------------------------------


def test_artifacts_list(invoke: Invoke, done: str) -> None:
    result = invoke("artifacts", "list", done[:9])
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "Kitaru artifacts"
    assert out[1].split() == ["ID", "Name", "Kind", "Save", "type", "Producing", "call"]
    assert [line.split()[1:] for line in out[3:]] == [
        ["research", "-", "step_output", "research"],
        ["write_draft", "-", "step_output", "write_draft"],
        ["draft_context", "context", "manual", "write_draft"],
        ["raw", "blob", "manual", "write_draft"],
    ]
    doc = parse(invoke("artifacts", "list", done, "-o", "json").stdout)
    assert doc["command"] == "artifacts.list" and doc["count"] == 4
    assert set(doc["items"][0]) == {
        "artifact_id", "name", "kind", "save_type", "producing_call", "metadata"
    }  # fmt: skip


def test_artifacts_list_filters(invoke: Invoke, done: str) -> None:
    def names(*args: str) -> list[str]:
        result = invoke("artifacts", "list", done, *args, "-o", "json")
        assert result.exit_code == 0, result.stderr
        return [i["name"] for i in parse(result.stdout)["items"]]

    assert names("--kind", "context") == ["draft_context"]
    assert names("--name", "raw") == ["raw"]
    assert names("--producing-call", "research") == ["research"]
    assert names("--limit", "2") == ["research", "write_draft"]
    result = invoke("artifacts", "list", done, "--name", "nothing")
    assert result.stdout == "Kitaru artifacts\n  Artifacts: none found\n"


def _artifact_id(done: str, name: str) -> str:
    from kitaru.client import KitaruClient

    return next(a.artifact_id for a in KitaruClient().artifacts.list(done) if a.name == name)


def test_artifacts_get(invoke: Invoke, done: str) -> None:
    art = _artifact_id(done, "draft_context")
    result = invoke("artifacts", "get", art)
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "Kitaru artifact"
    assert f"  Artifact ID: {art}" in out
    assert "  Kind: context" in out
    assert "  Producing call: write_draft" in out
    assert "  Value type: builtins.dict" in out
    assert '  Value: {"notes": "notes on AI"}' in out
    item = parse(invoke("artifacts", "get", art, "-o", "json").stdout)["item"]
    assert item["artifact_id"] == art
    assert item["value"] == {"notes": "notes on AI"}
    assert item["value_format"] == "json"
    assert item["value_type"] == "builtins.dict"


def test_artifacts_get_bytes_is_repr(invoke: Invoke, done: str) -> None:
    item = parse(invoke("artifacts", "get", _artifact_id(done, "raw"), "-o", "json").stdout)
    assert item["item"]["value_format"] == "repr"
    assert item["item"]["value"] == repr(b"\x00\xffraw")
    assert item["item"]["value_type"] == "builtins.bytes"


def test_artifacts_get_value(invoke: Invoke, done: str) -> None:
    result = invoke("artifacts", "get", _artifact_id(done, "write_draft"), "--value")
    assert result.stdout == "NOTES ON AI"
    result = invoke("artifacts", "get", _artifact_id(done, "raw"), "--value")
    assert result.stdout_bytes == b"\x00\xffraw"
    result = invoke("artifacts", "get", _artifact_id(done, "draft_context"), "--value")
    assert parse(result.stdout) == {"notes": "notes on AI"}


def test_artifacts_errors(invoke: Invoke, done: str) -> None:
    result = invoke("artifacts", "get", f"{done}.a9.0")
    assert result.exit_code == 1
    assert result.stderr == f"Error: Failed to load artifact '{done}.a9.0': no such artifact.\n"
    result = invoke("artifacts", "get", "garbage")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Invalid artifact id 'garbage'")
    result = invoke("artifacts", "list", "kr-zzzz", "-o", "json")
    assert result.exit_code == 1
    assert parse(result.stderr)["error"]["type"] == "KitaruNotFoundError"


# -- list --since, get details --------------------------------------------------------------------


def test_list_since(invoke: Invoke, store: Store) -> None:
    old_time = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    old = make_execution(store, flow="old", started_at=old_time)
    new = make_execution(store, flow="new")

    def ids(since: str) -> list[str]:
        result = invoke("executions", "list", "--since", since, "-o", "json")
        assert result.exit_code == 0, result.stderr
        return [i["exec_id"] for i in parse(result.stdout)["items"]]

    assert ids("1h") == [new]
    assert ids("30m") == [new]
    assert ids("4d") == [new, old]
    assert ids("2w") == [new, old]
    two_days_ago = (datetime.now() - timedelta(days=2)).strftime("%Y-%m-%d")
    assert ids(two_days_ago) == [new]
    assert ids("2000-01-01T00:00:00Z") == [new, old]
    result = invoke("executions", "list", "--since", "4d", "--limit", "1", "-o", "json")
    assert [i["exec_id"] for i in parse(result.stdout)["items"]] == [new]
    result = invoke("executions", "list", "--since", "yesterday")
    assert result.exit_code == 2
    assert "'yesterday' is neither an ISO date/time" in result.stderr


def test_list_duration_column(invoke: Invoke, store: Store) -> None:
    start = datetime(2026, 3, 7, 10, 0, 0, tzinfo=UTC)
    make_execution(
        store,
        started_at=start.isoformat(),
        ended_at=(start + timedelta(seconds=65)).isoformat(),
    )
    row = invoke("executions", "list").stdout.splitlines()[3]
    assert "1m 05s" in row


def test_get_shows_cancel_requested_and_replay_source(invoke: Invoke, store: Store) -> None:
    first = make_execution(store)
    second = make_execution(store, status="waiting", cancel_requested=True, original_exec_id=first)
    out = invoke("executions", "get", second).stdout.splitlines()
    assert f"  Replay of: {first}" in out
    assert "  Cancel requested: yes" in out
    assert "Cancel requested" not in invoke("executions", "get", first).stdout


# -- completion -----------------------------------------------------------------------------------


def test_completion_script() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env["_KITARU_COMPLETE"] = "bash_source"
    kitaru = Path(sys.executable).parent / "kitaru"
    command = [str(kitaru)] if kitaru.exists() else [sys.executable, "-m", "kitaru.cli"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "_kitaru_completion" in out.stdout
    assert "complete -o nosort -F _kitaru_completion kitaru" in out.stdout


def _complete(incomplete: str) -> list[str]:
    ctx = click.Context(cli)
    param = click.Argument(["exec_id"])
    return [item.value for item in _params.complete_exec_id(ctx, param, incomplete)]


def test_exec_id_completion(store: Store) -> None:
    first = make_execution(store)
    second = make_execution(store)
    assert set(_complete("")) == {first, second}
    assert _complete(first[:-1]) == [first]
    assert _complete(first.removeprefix("kr-")) == [first]
    assert _complete("kr-zzz") == []


@pytest.mark.corrupts_store
def test_exec_id_completion_never_raises(project_dir: Path) -> None:
    assert _complete("kr-") == []  # no store at all
    (project_dir / ".kitaru").mkdir()
    (project_dir / ".kitaru" / "format.json").write_text("{broken")
    assert _complete("kr-") == []


def test_exec_id_arguments_complete() -> None:
    for path in [
        ("executions", "get"),
        ("executions", "logs"),
        ("executions", "input"),
        ("executions", "resume"),
        ("executions", "retry"),
        ("executions", "cancel"),
        ("executions", "replay"),
        ("artifacts", "list"),
    ]:
        group = cli.commands[path[0]]
        assert isinstance(group, click.Group)
        argument = next(p for p in group.commands[path[1]].params if p.name == "exec_id")
        assert argument._custom_shell_complete is _params.complete_exec_id
