"""Helpers shared by the runtime tests: read the records a run left in ``.kitaru/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def exec_dir(exec_id: str, project: Path | None = None) -> Path:
    """The folder of one execution in the project's store."""
    return (project or Path.cwd()) / ".kitaru" / "executions" / exec_id


def call_files(exec_id: str) -> list[Path]:
    """The call record files of an execution, in journal order."""
    return sorted((exec_dir(exec_id) / "calls").glob("*.json"))


def call_records(exec_id: str) -> list[dict[str, Any]]:
    """The call records of an execution as stored JSON, in journal order."""
    return [json.loads(p.read_text()) for p in call_files(exec_id)]


def spec(exec_id: str) -> dict[str, Any]:
    """The execution's ``execution.yaml``."""
    return yaml.safe_load((exec_dir(exec_id) / "execution.yaml").read_text())


def state(exec_id: str) -> dict[str, Any]:
    """The execution's ``state.json`` as stored."""
    return json.loads((exec_dir(exec_id) / "state.json").read_text())
