"""``kitaru init``, ``kitaru status``, ``kitaru stack list`` and ``kitaru doctor``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Invoke, make_execution, parse

from kitaru.store import Store

needs_check = pytest.mark.skipif(
    importlib.util.find_spec("kitaru.store.check") is None,
    reason="kitaru.store.check (doctor) has not landed yet",
)


def test_init_creates_the_store(invoke: Invoke, project_dir: Path) -> None:
    result = invoke("init")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"Initialized Kitaru project in {project_dir}\n  Created {project_dir}/.kitaru\n"
    )
    assert result.stderr == ""
    assert (project_dir / ".kitaru" / "format.json").is_file()


def test_init_path_json(invoke: Invoke, project_dir: Path) -> None:
    (project_dir / "sub").mkdir()
    result = invoke("init", "sub", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert parse(result.stdout) == {
        "command": "init",
        "item": {"path": str(project_dir / "sub"), "repository_directory": ".kitaru"},
    }


def test_init_twice_fails(invoke: Invoke, project_dir: Path) -> None:
    assert invoke("init").exit_code == 0
    result = invoke("init")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: Already initialized: {project_dir}/.kitaru exists.\n"


def test_init_twice_json_error(invoke: Invoke) -> None:
    invoke("init")
    result = invoke("init", "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    doc = parse(result.stderr)
    assert doc["command"] == "init"
    assert doc["error"]["type"] == "KitaruStateError"
    assert doc["error"]["message"].startswith("Already initialized:")


def test_init_not_a_directory(invoke: Invoke, project_dir: Path) -> None:
    (project_dir / "file.txt").write_text("x")
    result = invoke("init", "file.txt")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: Target path is not a directory: {project_dir}/file.txt\n"


def test_status_without_project(invoke: Invoke) -> None:
    result = invoke("status")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Kitaru status"
    assert "  Project root: not available" in lines
    assert "  Warning: No Kitaru project found (run `kitaru init`)." in lines
    assert "Environment" in lines
    assert "  KITARU_INTERACTIVE: 0" in lines
    doc = parse(invoke("status", "-o", "json").stdout)
    assert doc["command"] == "status"
    assert doc["item"]["repository_root"] is None
    assert doc["item"]["warning"]


def test_status_with_project(
    invoke: Invoke, store: Store, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_execution(store, status="completed")
    make_execution(store, status="completed")
    make_execution(store, status="failed")
    monkeypatch.setenv("KITARU_AUTH_TOKEN", "supersecretvalue")
    result = invoke("status")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"  Project root: {project_dir}" in lines
    assert f"  Store: {project_dir}/.kitaru" in lines
    assert "  Durability: full" in lines
    assert "  Format: 2" in lines
    assert "  Active stack: local" in lines
    assert "  Executions: 3 (2 completed, 1 failed)" in lines
    assert "  KITARU_AUTH_TOKEN: supersec***" in lines
    assert not any(line.startswith("  Warning") for line in lines)
    item = parse(invoke("status", "-o", "json").stdout)["item"]
    assert item["repository_root"] == str(project_dir)
    assert item["executions"]["completed"] == 2


def test_stack_list(invoke: Invoke) -> None:
    result = invoke("stack", "list")
    assert result.exit_code == 0
    assert result.stdout == "Kitaru stacks\n  local: local (active)\n"
    doc = parse(invoke("stack", "list", "-o", "json").stdout)
    assert doc == {
        "command": "stack.list",
        "items": [{"id": "local", "name": "local", "is_active": True, "is_managed": True}],
        "count": 1,
    }


@needs_check
def test_doctor_without_project(invoke: Invoke) -> None:
    result = invoke("doctor")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No Kitaru project found")


def _fake_report(problems: list[dict[str, Any]], fixed: Any = 0) -> dict[str, Any]:
    errors = sum(p["severity"] == "error" for p in problems)
    return {
        "ok": errors == 0,
        "errors": errors,
        "warnings": len(problems) - errors,
        "fixed": fixed,
        "problems": problems,
    }


def _patch_doctor(monkeypatch: pytest.MonkeyPatch, report: dict[str, Any]) -> list[bool]:
    import kitaru.client

    calls: list[bool] = []

    def doctor(self: Any, *, fix: bool = False) -> dict[str, Any]:
        calls.append(fix)
        return report

    monkeypatch.setattr(kitaru.client._Project, "doctor", doctor)
    return calls


def test_doctor_rendering_with_problems(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _fake_report(
        [
            {
                "severity": "error",
                "code": "corrupt-record",
                "path": "executions/kr-1/state.json",
                "message": "cannot parse",
                "fix": None,
            },
            {
                "severity": "warning",
                "code": "temp-file",
                "path": "objects/ab/x.tmp",
                "message": "leftover temp file",
                "fix": "kitaru doctor --fix",
            },
        ]
    )
    calls = _patch_doctor(monkeypatch, report)
    result = invoke("doctor")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "error   executions/kr-1/state.json: cannot parse",
        "warning objects/ab/x.tmp: leftover temp file (fix: kitaru doctor --fix)",
        "1 error, 1 warning",
    ]
    assert result.stderr == ""
    result = invoke("doctor", "--fix", "-o", "json")
    assert calls == [False, True]
    assert result.exit_code == 1
    assert parse(result.stdout) == {"command": "doctor", "item": report}
    assert result.stderr == ""


def test_doctor_rendering_clean(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_doctor(monkeypatch, _fake_report([], fixed=[]))
    result = invoke("doctor")
    assert result.exit_code == 0
    assert result.stdout == "No problems found.\n"
    result = invoke("doctor", "--fix")
    assert result.stdout == "No problems found.\nFixed 0 problems.\n"


@needs_check
def test_doctor_clean_store(invoke: Invoke, store: Store) -> None:
    make_execution(store)
    result = invoke("doctor")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "No problems found." in result.stdout
    doc = parse(invoke("doctor", "-o", "json").stdout)
    assert doc["command"] == "doctor"
    assert doc["item"]["errors"] == 0


@needs_check
@pytest.mark.corrupts_store
def test_doctor_corrupt_state(invoke: Invoke, store: Store) -> None:
    exec_id = make_execution(store)
    (store.root / "executions" / exec_id / "state.json").write_text("{not json")
    result = invoke("doctor")
    assert result.exit_code == 1
    assert "state.json" in result.stdout
    assert result.stdout.startswith("error")
    result = invoke("doctor", "-o", "json")
    assert result.exit_code == 1
    item = parse(result.stdout)["item"]
    assert item["errors"] >= 1
    assert any("state.json" in (p["path"] or "") for p in item["problems"])


@needs_check
def test_doctor_fix_removes_temp_file(invoke: Invoke, store: Store) -> None:
    import os
    import time

    temp = store.root / ".config.yaml.999999.tmp"
    temp.write_text("partial")
    old = time.time() - 3600
    os.utime(temp, (old, old))
    result = invoke("doctor")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("warning .config.yaml.999999.tmp: ")
    result = invoke("doctor", "--fix")
    assert result.exit_code == 0, result.stdout
    assert "(fixed)" in result.stdout
    assert result.stdout.splitlines()[-1] == "Fixed 1 problem."
