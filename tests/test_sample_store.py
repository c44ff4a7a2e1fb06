"""`.kitaru-sample/` is what `make sample` makes; doctor accepts it; reading it writes nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / ".kitaru-sample"

_ID = re.compile(r"kr-[0-9a-z]{14}")
_RULES = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00"), "<time>"),
    (re.compile(r'"(pid|lineno_ignored)": \d+'), r'"\1": <n>'),
    (re.compile(r'"host": "[^"]*"'), '"host": <host>'),
    (re.compile(r"line \d+"), "line <n>"),
    (re.compile(r"(python|cwd): .*"), r"\1: <path>"),
    (re.compile(r"(file|sys_path_entry): .*"), r"\1: <path>"),
    (re.compile(r"/[^\s\"']*/(kitaru|examples)/"), r"<root>/\1/"),
    (re.compile(r"\^+"), "^"),
]


def _normalize_tree(root: Path) -> dict[str, str]:
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    ids = sorted({m for name in files for m in _ID.findall(name)})
    mapping = {old: f"kr-{i:014d}" for i, old in enumerate(ids)}

    def norm(text: str) -> str:
        text = _ID.sub(lambda m: mapping.get(m.group(0), "kr-unknown"), text)
        for pattern, repl in _RULES:
            text = pattern.sub(repl, text)
        return text

    out = {}
    for name, path in files.items():
        if name.startswith("objects/") or name == "README.md":
            out[norm(name)] = "<blob>"  # content-addressed: covered by doctor's hash check
            continue
        text = path.read_text()
        if name.endswith("logs.jsonl"):
            text = re.sub(r'"filename":"[^"]*"', '"filename":<path>', text)
        out[norm(name)] = norm(text)
    return out


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="run `make sample` to create .kitaru-sample/")
def test_make_sample_matches_the_committed_sample(tmp_path: Path) -> None:
    fresh = tmp_path / "sample"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    subprocess.run(
        [sys.executable, str(REPO / "examples/sample_store.py"), str(fresh)],
        check=True,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    committed, regenerated = _normalize_tree(SAMPLE), _normalize_tree(fresh)
    assert sorted(committed) == sorted(regenerated)
    for name in committed:
        assert committed[name] == regenerated[name], name


def _snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_sample_is_readable_without_writing_and_doctor_accepts_it() -> None:
    from click.testing import CliRunner

    from kitaru.cli import cli

    before = _snapshot(SAMPLE)
    runner = CliRunner()
    listed = runner.invoke(cli, ["--project", str(SAMPLE), "executions", "list", "-o", "json"])
    assert listed.exit_code == 0, listed.stderr
    import json

    items = json.loads(listed.stdout)["items"]
    assert {i["status"] for i in items} == {"completed", "failed", "waiting", "cancelled"}
    assert any(i["original_exec_id"] for i in items)
    for item in items:
        got = runner.invoke(cli, ["--project", str(SAMPLE), "executions", "get", item["exec_id"]])
        assert got.exit_code == 0, got.stderr
    doctor = runner.invoke(cli, ["--project", str(SAMPLE), "doctor", "-o", "json"])
    assert doctor.exit_code == 0, doctor.stdout
    assert json.loads(doctor.stdout)["item"]["errors"] == 0
    assert _snapshot(SAMPLE) == before
