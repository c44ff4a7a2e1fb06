"""Helpers for the cache and log-capture tests: read what a run left in ``.kitaru/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kitaru


def exec_dir(exec_id: str) -> Path:
    """The folder of one execution in the current project's store."""
    return Path.cwd() / ".kitaru" / "executions" / exec_id


def calls(exec_id: str) -> list[dict[str, Any]]:
    """The execution's call records as stored JSON, in journal order."""
    return [json.loads(p.read_text()) for p in sorted((exec_dir(exec_id) / "calls").glob("*.json"))]


def cache_files() -> list[Path]:
    """Every cache entry (named by its key) in the current project's store."""
    base = Path.cwd() / ".kitaru" / "cache"
    return sorted(p for p in base.iterdir() if not p.name.startswith(".")) if base.is_dir() else []


def cache_call_id(entry: Path) -> str:
    """The call id a cache entry names (it is a hard link to that call's record)."""
    return json.loads(entry.read_bytes())["call_id"]


def raw_logs(exec_id: str) -> list[dict[str, Any]]:
    """The execution's ``logs.jsonl`` parsed line by line (every line must parse)."""
    path = exec_dir(exec_id) / "logs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def logs(exec_id: str, **kwargs: Any) -> list[Any]:
    """``client.executions.logs`` for the execution."""
    return kitaru.KitaruClient().executions.logs(exec_id, **kwargs)


def messages(exec_id: str, **kwargs: Any) -> list[str]:
    """Just the messages of the execution's log entries, in time order."""
    return [e.message for e in logs(exec_id, **kwargs)]
