"""Fixtures for CLI tests: a runner that keeps stderr apart, and a fresh store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Invoke, run_flow, write_flows
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


@pytest.fixture
def flows(project_dir: Path) -> str:
    """A store plus the test flows written into the project folder; the flows' file name."""
    Store.init(project_dir)
    return write_flows(project_dir)


@pytest.fixture
def done(flows: str) -> str:
    """A completed execution with one runner line and two step lines."""
    return run_flow(f"{flows}:content_pipeline", topic="AI").exec_id
