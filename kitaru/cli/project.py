"""Project commands: ``kitaru init``, ``kitaru status`` and ``kitaru doctor``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from kitaru.cli._client import get_client
from kitaru.cli.output import Lines, Snapshot, Success, emit, output_option

__all__ = ["COMMANDS", "doctor", "init", "status"]


@click.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@output_option
def init(path: Path | None) -> None:
    """Create a .kitaru/ store in PATH (default: --project, KITARU_PROJECT_DIR or here).

    Example: kitaru init my-agent
    """
    if path is None and os.environ.get("KITARU_PROJECT_DIR"):
        path = Path(os.environ["KITARU_PROJECT_DIR"])
    result = get_client().project.init(path)
    created = Path(result["path"]) / result["repository_directory"]
    emit(
        Success(f"Initialized Kitaru project in {result['path']}", [f"Created {created}"]),
        item=result,
    )


def _counts(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = [f"{n} {name}" for name, n in counts.items() if n]
    return f"{total} ({', '.join(parts)})" if parts else str(total)


def _or_missing(value: Any) -> Any:
    return "not available" if value is None else value


@click.command()
@output_option
def status() -> None:
    """Show the project, its store and the KITARU_* environment.

    Example: kitaru status -o json
    """
    info = get_client().project.status()
    rows = [
        ("SDK version", info["sdk_version"]),
        ("Connection", info["connection"]),
        ("Project root", _or_missing(info["repository_root"])),
        ("Store", _or_missing(info["config_directory"])),
        ("Durability", _or_missing(info["durability"])),
        ("Format", _or_missing(info["format"])),
        ("Active stack", info["active_stack"]),
        ("Executions", _counts(info["executions"])),
        ("Python", info["python_version"]),
    ]
    env = [(var["name"], var["value"]) for var in info["environment"]]
    sections = [("Environment", env or [("KITARU_*", "none set")])]
    emit(Snapshot("Kitaru status", rows, sections, warning=info["warning"]), item=info)


def _count(value: Any) -> int:
    if isinstance(value, int):
        return value
    return len(value) if value else 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _problem_line(problem: dict[str, Any]) -> str:
    line = f"{problem['severity']:<7} {problem.get('path') or '.'}: {problem['message']}"
    if problem.get("fixed"):
        return f"{line} (fixed)"
    return f"{line} (fix: {problem['fix']})" if problem.get("fix") else line


def _doctor_lines(report: dict[str, Any], fix: bool) -> list[str]:
    lines = [_problem_line(p) for p in report.get("problems", [])]
    errors, warnings = _count(report.get("errors")), _count(report.get("warnings"))
    if errors or warnings:
        lines.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
    else:
        lines.append("No problems found.")
    if fix:
        lines.append(f"Fixed {_plural(_count(report.get('fixed')), 'problem')}.")
    return lines


@click.command()
@click.option("--fix", is_flag=True, help="Repair what is safe (temp files, orphans, index).")
@output_option
@click.pass_context
def doctor(ctx: click.Context, fix: bool) -> None:
    """Check every record, blob and index entry of the store (like git fsck).

    Exits 1 when an error is found; warnings alone exit 0.

    Example: kitaru doctor --fix
    """
    report = get_client().project.doctor(fix=fix)
    emit(Lines(_doctor_lines(report, fix)), item=report)
    if _count(report.get("errors")):
        ctx.exit(1)


COMMANDS = [init, status, doctor]
