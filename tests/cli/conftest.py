"""Fixtures for CLI tests: a runner that keeps stderr apart, and a fresh store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Invoke
from click.testing import CliRunner, Result

from kitaru.cli import cli
from kitaru.store import Store


@pytest.fixture
def invoke() -> Invoke:
    """Run ``kitaru ARGS...`` in-process and return Click's result (stdout/stderr apart)."""
    runner = CliRunner()

    def run(*args: str, **kwargs: Any) -> Result:
        return runner.invoke(cli, list(args), prog_name="kitaru", **kwargs)

    return run


@pytest.fixture
def store(project_dir: Path) -> Store:
    """A fresh store in the test's project folder."""
    return Store.init(project_dir)
