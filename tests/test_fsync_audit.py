"""Durability order, audited with strace (reliability plan, T2): what a kill -9 cannot show.

Every record that ends up in the store is renamed into place from a temp file that was fsynced
first, and its folder is fsynced after the rename, before the run ends. A record created in
place (``execution.yaml``, reachable only once ``state.json`` is renamed in) is fsynced itself
before that rename, and its folder after it, before the run ends.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FLOW = """
import kitaru
from kitaru import checkpoint, flow


@checkpoint
def step(x: int) -> int:
    kitaru.save("big", "y" * 20_000, type="blob")  # a blob, not an inline value
    return x + 1


@flow
def audited(x: int) -> int:
    kitaru.log(seen=True)
    first = step(x)
    kitaru.wait(name="gate", schema=bool, timeout=0.05)  # times out: the run settles waiting
    return step(first)


audited.run(1)
"""

_RENAME = re.compile(r'rename(?:at2?)?\(.*?"([^"]+)".*?"([^"]+)"')
_FSYNC = re.compile(r"f(?:data)?sync\(\d+<([^>]+)>\)\s+=\s+0")
_CREATE = re.compile(r'openat\(.*?"([^"]+)", [^)]*O_CREAT\|O_EXCL[^)]*\)\s+=\s+\d+')
# Records whose last version must be durable; cache entries and index markers are derived.
_RECORD = re.compile(
    r"/executions/[^/]+/(state\.json|execution\.yaml|calls/[^/]+|waits/[^/]+)$|/objects/"
)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_every_record_is_fsynced_before_and_after_its_rename(project_dir: Path) -> None:
    (project_dir / "audited.py").write_text(FLOW)
    trace = project_dir / "trace.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env["KITARU_INTERACTIVE"] = "0"
    calls = "trace=fsync,fdatasync,rename,renameat,renameat2,openat"
    result = subprocess.run(
        ["strace", "-f", "-y", "-o", str(trace), "-e", calls, sys.executable, "audited.py"],
        cwd=project_dir, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if result.returncode != 0 and "ptrace" in result.stderr.lower():
        pytest.skip(f"strace cannot trace here: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr

    events: list[tuple[str, str, str]] = []  # (kind, path, target)
    for line in trace.read_text().splitlines():
        if (found := _RENAME.search(line)) and "= 0" in line:
            events.append(("rename", found.group(1), found.group(2)))
        elif found := _FSYNC.search(line):
            events.append(("fsync", found.group(1), ""))
        elif found := _CREATE.search(line):
            events.append(("create", found.group(1), ""))

    last_rename: dict[str, int] = {}
    for index, (kind, _src, target) in enumerate(events):
        if kind == "rename" and _RECORD.search(target):
            last_rename[target] = index
    assert any(t.endswith("/state.json") for t in last_rename), "no record writes traced"
    problems = []
    for target, index in last_rename.items():
        source = events[index][1]
        before = [p for kind, p, _ in events[:index] if kind == "fsync"]
        after = [p for kind, p, _ in events[index + 1 :] if kind == "fsync"]
        if source not in before:
            problems.append(f"{target}: temp file not fsynced before the rename")
        if str(Path(target).parent) not in after:
            problems.append(f"{target}: folder not fsynced after the rename")
    problems += _created_in_place_problems(events)
    assert not problems, "\n".join(problems)


def _created_in_place_problems(events: list[tuple[str, str, str]]) -> list[str]:
    """Each ``execution.yaml`` is fsynced before ``state.json`` is renamed in, its folder after."""
    problems = []
    created = [(i, path) for i, (kind, path, _) in enumerate(events) if kind == "create"]
    specs = [(i, path) for i, path in created if path.endswith("/execution.yaml")]
    assert specs, "no execution.yaml creation traced"
    for index, path in specs:
        folder = str(Path(path).parent)
        state = next(
            i
            for i, (kind, _src, target) in enumerate(events)
            if i > index and kind == "rename" and target == f"{folder}/state.json"
        )
        fsyncs = [p for kind, p, _ in events[index:state] if kind == "fsync"]
        if path not in fsyncs:
            problems.append(f"{path}: not fsynced before state.json was renamed in")
        elif folder not in [p for kind, p, _ in events[state:] if kind == "fsync"]:
            problems.append(f"{path}: folder not fsynced after state.json was renamed in")
    return problems
