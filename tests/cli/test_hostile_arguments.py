"""Every CLI argument that names an execution, artifact, checkpoint, wait or flow, given each
hostile name: a one-line ``Error: ...`` (exit 1, stdout empty, never a traceback) and nothing
created or changed on disk.

Names are passed the way a shell user would: a positional one after ``--`` (so ``-rf`` and
``--help`` are values, not options), an option value as ``--opt=VALUE``. Names holding NUL and
non-strings are skipped: they cannot be command-line arguments.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import run_flow, write_flows
from click.testing import CliRunner

from kitaru.cli import cli
from kitaru.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from hostile_names import HOSTILE_NAMES  # noqa: E402

NAMES: list[str] = [n for n in HOSTILE_NAMES if isinstance(n, str) and "\x00" not in n]

Build = Callable[[str, dict[str, str]], list[str]]

# Commands whose execution/artifact id argument gets the hostile name (the store holds one
# completed execution, so a prefix that resolved to "anything" would be noticed).
ID_COMMANDS: dict[str, Build] = {
    "executions get": lambda n, ids: ["executions", "get", "--", n],
    "executions logs": lambda n, ids: ["executions", "logs", "--", n],
    "executions input --value": lambda n, ids: ["executions", "input", "--value", "true", "--", n],
    "executions input --abort": lambda n, ids: ["executions", "input", "--abort", "--", n],
    "executions resume": lambda n, ids: ["executions", "resume", "--", n],
    "executions retry": lambda n, ids: ["executions", "retry", "--", n],
    "executions cancel": lambda n, ids: ["executions", "cancel", "--", n],
    "executions replay": lambda n, ids: ["executions", "replay", "--from", "write_draft", "--", n],
    "artifacts list": lambda n, ids: ["artifacts", "list", "--", n],
    "artifacts get": lambda n, ids: ["artifacts", "get", "--", n],
}

# Commands whose name option gets the hostile name (the id is a real one).
NAME_COMMANDS: dict[str, Build] = {
    "executions replay --from": lambda n, ids: ["executions", "replay", ids["done"], f"--from={n}"],
    "executions input --wait": lambda n, ids: [
        "executions",
        "input",
        ids["waiting"],
        f"--wait={n}",
        "--value",
        "true",
    ],
    "executions input --wait --abort": lambda n, ids: [
        "executions",
        "input",
        ids["waiting"],
        f"--wait={n}",
        "--abort",
    ],
    "executions list --flow": lambda n, ids: ["executions", "list", f"--flow={n}"],
}

LOGS_CHECKPOINT: Build = lambda n, ids: ["executions", "logs", ids["done"], f"--checkpoint={n}"]  # noqa: E731


def _snapshot(root: Path) -> list[tuple[str, str, int, int]]:
    """Every path under ``root`` with its kind, size and mtime."""
    out = []
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = "dir" if path.is_dir() else "file"
        out.append((str(path.relative_to(root)), kind, st.st_size, st.st_mtime_ns))
    return out


@pytest.fixture
def ids(project_dir: Path) -> dict[str, str]:
    """A real store: one completed execution (with artifacts)."""
    Store.init(project_dir)
    flows = write_flows(project_dir)
    done = run_flow(f"{flows}:content_pipeline").exec_id
    return {"done": done, "flows": flows}


_VALID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def _problems(
    build: Build, ids: dict[str, str], root: Path, names: list[str] | None = None
) -> list[str]:
    """Run the command for every name (text and JSON mode); describe each deviation."""
    runner = CliRunner()
    problems = []
    for name in NAMES if names is None else names:
        for json_mode in (False, True):
            args = build(name, ids)
            if json_mode:  # before a `--`, which ends the options
                at = args.index("--") if "--" in args else len(args)
                args[at:at] = ["-o", "json"]
            before = _snapshot(root)
            result = runner.invoke(cli, args, prog_name="kitaru")
            after = _snapshot(root)
            err = result.stderr
            what = f"{name!r:.60} json={json_mode}: exit {result.exit_code}, stderr {err!r:.300}"
            if result.exit_code != 1:
                problems.append(f"{what}, stdout {result.stdout!r:.200}")
                continue
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                problems.append(f"{what}: exception {result.exception!r}")
            if "Traceback" in err:
                problems.append(f"{what}: traceback")
            if result.stdout != "":
                problems.append(f"{what}: stdout {result.stdout!r:.200}")
            if err.count("\n") != 1 or not err.endswith("\n"):
                problems.append(f"{what}: not exactly one line")
            elif not json_mode and any(ord(c) < 32 or ord(c) == 127 for c in err[:-1]):
                problems.append(f"{what}: raw control character in the error line")
            if json_mode:
                try:
                    doc = json.loads(err)
                    assert doc["command"] and doc["error"]["type"] and doc["error"]["message"]
                except Exception as exc:  # noqa: BLE001 - report, do not stop the sweep
                    problems.append(f"{what}: not a JSON error document ({exc!r})")
            elif not err.startswith("Error: "):
                problems.append(f"{what}: does not start with 'Error: '")
            if after != before:
                changed = sorted(set(after) ^ set(before))
                problems.append(f"{what}: files changed {changed[:5]}")
    return problems


def test_names_are_usable_as_arguments() -> None:
    assert len(NAMES) >= 60  # all but the NUL names and the non-strings
    assert {"../x", "-rf", "--help", "", "a\nb", "k" * 4096} <= set(NAMES)


@pytest.mark.parametrize("command", list(ID_COMMANDS))
def test_hostile_id_is_refused(command: str, ids: dict[str, str], tmp_path: Path) -> None:
    problems = _problems(ID_COMMANDS[command], ids, tmp_path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("command", list(NAME_COMMANDS))
def test_hostile_name_option_is_refused(command: str, ids: dict[str, str], tmp_path: Path) -> None:
    if "--wait" in command:
        ids = {**ids, "waiting": run_flow(f"{ids['flows']}:approval").exec_id}
    problems = _problems(NAME_COMMANDS[command], ids, tmp_path)
    assert not problems, "\n".join(problems)


def test_hostile_checkpoint_is_harmless(ids: dict[str, str], tmp_path: Path) -> None:
    """``logs --checkpoint NAME``: whatever it answers, no traceback and no file touched."""
    runner = CliRunner()
    for name in NAMES:
        before = _snapshot(tmp_path)
        result = runner.invoke(cli, LOGS_CHECKPOINT(name, ids), prog_name="kitaru")
        assert _snapshot(tmp_path) == before, repr(name)
        assert result.exit_code in (0, 1), (name, result.stdout, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit), name
        assert "Traceback" not in result.stderr
        assert "drafting" not in result.stdout and "researching" not in result.stdout, name


def test_hostile_checkpoint_is_refused(ids: dict[str, str], tmp_path: Path) -> None:
    # As upstream, the checkpoint filter is stripped first: ' abc' is the checkpoint 'abc'.
    names = [n for n in NAMES if n.strip() == n or not _VALID.fullmatch(n.strip())]
    problems = _problems(LOGS_CHECKPOINT, ids, tmp_path, names)
    assert not problems, "\n".join(problems)
