"""Every test gets its own project folder and a clean KITARU_* environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each test in an empty folder of its own, with no KITARU_* variables set."""
    for name in list(os.environ):
        if name.startswith("KITARU_"):
            monkeypatch.delenv(name, raising=False)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("KITARU_INTERACTIVE", "0")
    return project
