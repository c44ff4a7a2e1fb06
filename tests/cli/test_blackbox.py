"""The installed ``kitaru`` executable, run in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KITARU = Path(sys.executable).parent / "kitaru"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [str(KITARU), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(not KITARU.exists(), reason="the kitaru console script is not installed")
def test_init_status_doctor_end_to_end(project_dir: Path) -> None:
    result = _run("init", cwd=project_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Initialized Kitaru project in {project_dir}")

    result = _run("status", "-o", "json", cwd=project_dir)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["command"] == "status"
    assert doc["item"]["repository_root"] == str(project_dir)
    assert doc["item"]["warning"] is None

    result = _run("doctor", "-o", "json", cwd=project_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["command"] == "doctor"
    assert doc["item"]["errors"] == 0

    result = _run("executions", "get", "kr-nope", "-o", "json", cwd=project_dir)
    assert result.returncode == 1
    assert result.stdout == ""
    assert json.loads(result.stderr)["error"]["type"] == "KitaruNotFoundError"

    result = _run("executions", "list", "--bogus", cwd=project_dir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
