"""The root group: help, version, the --output option, --project and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Invoke, make_execution, parse

import kitaru
from kitaru.store import Store


def test_bare_kitaru_prints_help(invoke: Invoke) -> None:
    result = invoke()
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: kitaru")
    assert "executions" in result.stdout
    assert result.stderr == ""


def test_help_short_and_long(invoke: Invoke) -> None:
    for flag in ("-h", "--help"):
        result = invoke(flag)
        assert result.exit_code == 0
        assert "--project PATH" in result.stdout


def test_version(invoke: Invoke) -> None:
    for flag in ("--version", "-V"):
        result = invoke(flag)
        assert result.exit_code == 0
        assert result.stdout == f"kitaru {kitaru.__version__}\n"


def test_bad_output_value_is_a_text_error(invoke: Invoke) -> None:
    result = invoke("status", "-o", "yaml")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: `--output` must be either `text` or `json`.\n"


def test_output_value_is_stripped_and_case_insensitive(invoke: Invoke) -> None:
    result = invoke("stack", "list", "--output", "  JSON ")
    assert result.exit_code == 0
    assert parse(result.stdout)["command"] == "stack.list"


def test_unknown_option_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("executions", "list", "--bogus")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "No such option" in result.stderr


def test_missing_argument_and_bad_type_exit_2(invoke: Invoke) -> None:
    assert invoke("executions", "get").exit_code == 2
    assert invoke("executions", "list", "--limit", "x").exit_code == 2
    assert invoke("executions", "list", "--limit", "0").exit_code == 2
    assert invoke("nope").exit_code == 2


def test_project_option_points_at_another_folder(invoke: Invoke, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    exec_id = make_execution(Store.init(other), flow="elsewhere")
    # The working directory has no store; --project finds the other one.
    result = invoke("--project", str(other), "executions", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = parse(result.stdout)
    assert [i["exec_id"] for i in doc["items"]] == [exec_id]
    # A store folder itself works too.
    result = invoke("--project", str(other / ".kitaru"), "executions", "get", exec_id[:8])
    assert result.exit_code == 0, result.stderr
    assert "elsewhere" in result.stdout


def test_project_option_with_init_creates_the_store_there(invoke: Invoke, tmp_path: Path) -> None:
    other = tmp_path / "fresh"
    other.mkdir()
    result = invoke("--project", str(other), "init")
    assert result.exit_code == 0, result.stderr
    assert (other / ".kitaru" / "format.json").is_file()


def test_no_project_error_for_commands_that_need_one(invoke: Invoke) -> None:
    result = invoke("executions", "get", "kr-abc")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: No Kitaru project found")


def test_init_defaults_to_kitaru_project_dir(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "env-project"
    other.mkdir()
    monkeypatch.setenv("KITARU_PROJECT_DIR", str(other))
    result = invoke("init", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert parse(result.stdout)["item"]["path"] == str(other)
