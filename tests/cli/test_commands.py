"""Every command: has --output, --help with an example, and a section in docs/cli.md."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from cli_helpers import Invoke

from kitaru.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        paths.append(path)
        if isinstance(command, click.Group):
            paths += _walk(command, path)
    return paths


ALL = _walk(cli)
LEAVES = [p for p in ALL if not isinstance(cli.get_command(None, p[0]), click.Group) or len(p) > 1]


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def test_the_expected_commands_exist() -> None:
    names = {" ".join(p) for p in ALL}
    assert {
        "init",
        "status",
        "doctor",
        "run",
        "stack",
        "stack list",
        "executions",
        "executions list",
        "executions get",
        "executions logs",
        "executions input",
        "executions resume",
        "executions retry",
        "executions replay",
        "executions cancel",
        "artifacts",
        "artifacts list",
        "artifacts get",
    } <= names


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_help_has_an_example(invoke: Invoke, path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert f"Usage: kitaru {' '.join(path)}" in result.stdout
    assert "Example: kitaru " in result.stdout
    assert invoke(*path, "-h").stdout == result.stdout


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_leaf_command_has_the_output_option(path: tuple[str, ...]) -> None:
    command = _command(path)
    assert not isinstance(command, click.Group)
    options = {opt for p in command.params for opt in getattr(p, "opts", [])}
    assert {"-o", "--output"} <= options


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_leaf_command_rejects_a_bad_output(invoke: Invoke, path: tuple[str, ...]) -> None:
    args = ["kr-x"] if path == ("executions", "get") else []
    result = invoke(*path, *args, "-o", "xml")
    assert result.exit_code == 1
    assert result.stderr == "Error: `--output` must be either `text` or `json`.\n"


def test_groups_without_subcommand_print_help(invoke: Invoke) -> None:
    for path in ALL:
        if isinstance(_command(path), click.Group):
            result = invoke(*path)
            assert result.exit_code in (0, 2)
            assert f"Usage: kitaru {' '.join(path)}" in result.stdout + result.stderr


def test_every_command_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [" ".join(p) for p in ALL if f"kitaru {' '.join(p)}" not in text]
    assert not missing, f"not in docs/cli.md: {missing}"
    for section in ("JSON", "exit codes", "--output", "--project", "KITARU_DEBUG"):
        assert section in text


def test_every_option_is_documented() -> None:
    """docs/cli.md is checked against the Click definitions: no option goes undocumented."""
    text = DOCS.read_text(encoding="utf-8")
    missing = []
    for path in LEAVES:
        for param in _command(path).params:
            if isinstance(param, click.Option) and not param.hidden:
                longest = max(param.opts, key=len)
                if longest not in text and longest != "--help":
                    missing.append(f"kitaru {' '.join(path)} {longest}")
    assert not missing, f"options missing from docs/cli.md: {missing}"


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, kitaru.cli; "
        "heavy = [m for m in ('kitaru.client', 'kitaru.store', 'tabulate', 'orjson') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The required arguments of each command that has some (an id that does not exist).
REQUIRED_ARGS = {
    ("artifacts", "get"): ["kr-missing.c1.0"],
    ("artifacts", "list"): ["kr-missing"],
    ("executions", "cancel"): ["kr-missing"],
    ("executions", "get"): ["kr-missing"],
    ("executions", "logs"): ["kr-missing"],
    ("executions", "replay"): ["kr-missing", "--from", "step"],
    ("executions", "resume"): ["kr-missing"],
    ("executions", "retry"): ["kr-missing"],
    ("run",): ["missing.py:flow"],
}


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_leaf_command_speaks_json(invoke: Invoke, path: tuple[str, ...]) -> None:
    """In an initialized project each command prints one JSON document (or a JSON error)."""
    assert invoke("init").exit_code == 0
    args = REQUIRED_ARGS.get(path, [])
    if path == ("init",):
        args = ["sub"]
        Path("sub").mkdir()
    result = invoke(*path, *args, "-o", "json")
    stream = result.stdout if result.exit_code == 0 else result.stderr
    doc = json.loads(stream)
    assert doc["command"] == ".".join(path)
    assert (
        ("item" in doc)
        or ("items" in doc and doc["count"] == len(doc["items"]))
        or ("error" in doc and result.stdout == "")
    )
