"""Every test gets its own project folder and a clean KITARU_* environment.

After each test, runner processes the test started are reaped (killed if still running after a
grace period), and the test's store must pass `kitaru doctor` with no errors.
"""

from __future__ import annotations

import os
import sys
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


def _reap_runners(grace: float = 20.0) -> list[int]:
    """Wait for runner processes this test started; kill any left. Returns the killed pids."""
    launch = sys.modules.get("kitaru.runtime.launch")
    if launch is None:
        return []
    killed = []
    for proc in launch.launched_runners():
        try:
            proc.wait(timeout=grace)
        except Exception:
            proc.kill()
            proc.wait()
            killed.append(proc.pid)
    return killed


@pytest.fixture(autouse=True)
def store_stays_healthy(request: pytest.FixtureRequest, project_dir: Path):
    """After the test: no runner left behind, and doctor finds no errors in its store."""
    yield
    killed = _reap_runners()
    assert not killed, f"runner processes still running after the test: {killed}"
    if request.node.get_closest_marker("corrupts_store"):
        return
    store_root = project_dir / ".kitaru"
    if not (store_root / "format.json").is_file():
        return
    from kitaru.store import Store
    from kitaru.store.check import check_store

    report = check_store(Store.open_at(store_root))
    errors = [p for p in report["problems"] if p["severity"] == "error" and not p.get("fixed")]
    assert not errors, f"doctor found errors in the test's store: {errors}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "corrupts_store: the test damages its store on purpose (skip the doctor check)"
    )
