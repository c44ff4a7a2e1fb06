"""Measurement helpers for bench/run_all.py (standard library + kitaru only).

Every timed flow runs in a fresh temporary project folder: ``tempfile.mkdtemp()``, ``os.chdir``
into it, ``KITARU_PROJECT_DIR`` pointing at it and ``KITARU_DURABILITY`` set as asked. The store
is created (``Store.init``) before the clock starts, so the figures are steady-state runs in an
initialised project, not the one-off cost of creating ``.kitaru/``. The folder is removed after.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kitaru
from kitaru.store import Store
from kitaru.store.atomic import write_atomic

REPO = Path(__file__).resolve().parent.parent
K = 50  # checkpoints in the per-checkpoint flow


# -- the functions under test (module level, so source_info can find them) ------------------


def step_fn(i: int) -> str:
    return f"result-{i}"


def empty_fn() -> None:
    return None


def three_fn(x: str) -> str:
    a = step_fn(1)
    b = step_fn(2)
    c = step_fn(3)
    return f"{x}:{a}:{b}:{c}"


step = kitaru.checkpoint(step_fn)


@kitaru.flow
def empty_flow() -> None:
    return None


@kitaru.flow
def k_flow(k: int) -> str:
    last = ""
    for i in range(k):
        last = step(i)
    return last


@kitaru.flow
def three_flow(x: str) -> str:
    a = step(1)
    b = step(2)
    c = step(3)
    return f"{x}:{a}:{b}:{c}"


# -- project folders ----------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_project(durability: str | None) -> Iterator[Path]:
    """A fresh project folder with an initialised store, as the cwd; removed afterwards."""
    old_cwd = os.getcwd()
    saved = {k: os.environ.get(k) for k in ("KITARU_PROJECT_DIR", "KITARU_DURABILITY")}
    folder = Path(tempfile.mkdtemp(prefix="kitaru-bench-"))
    try:
        os.chdir(folder)
        os.environ["KITARU_PROJECT_DIR"] = str(folder)
        if durability is None:
            os.environ.pop("KITARU_DURABILITY", None)
        else:
            os.environ["KITARU_DURABILITY"] = durability
        Store.init(folder)
        settle_disk()  # the store's creation is untimed: its writeback must not land in the run
        yield folder
    finally:
        os.chdir(old_cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(folder, ignore_errors=True)
        settle_disk()


def settle_disk() -> None:
    """Flush what the last (untimed) cleanup left pending, before the next timing starts.

    Deleting a folder queues writeback and, on file systems mounted with ``discard``, TRIM
    requests that are issued at the next journal commit; without this they land inside
    whichever timing comes next, baseline or flow, and blur both.
    """
    os.sync()


def timed_in_fresh_project(action: Callable[[], object], durability: str | None) -> float:
    """Seconds one call of ``action`` takes in a fresh project."""
    with fresh_project(durability):
        t0 = time.perf_counter()
        action()
        return time.perf_counter() - t0


# -- baselines -------------------------------------------------------------------------------------


def record_bytes(size: int = 1024) -> bytes:
    """A ~1 KB JSON record shaped like a call record."""
    rec = {"schema_version": 1, "seq": 1, "name": "step", "status": "completed", "pad": ""}
    base = len(json.dumps(rec).encode())
    rec["pad"] = "x" * max(0, size - base - 1)
    return json.dumps(rec).encode() + b"\n"


def atomic_write_samples(durable: bool, n: int = 200) -> list[float]:
    """Seconds of each of ``n`` ``write_atomic`` calls, in order, each writing a ~1 KB record to a
    new name in one fresh folder (the disk is settled afterwards, like after every timing)."""
    data = record_bytes()
    folder = Path(tempfile.mkdtemp(prefix="kitaru-bench-w-"))
    try:
        samples = []
        for i in range(n):
            path = folder / f"{i:04d}-step.json"
            t0 = time.perf_counter()
            write_atomic(path, data, durable=durable)
            samples.append(time.perf_counter() - t0)
        return samples
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        settle_disk()


def plain_call_seconds(func: Callable[..., object], *args: object, n: int = 20000) -> float:
    """Median over 7 batches of the time of one plain Python call of ``func``."""
    batches = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            func(*args)
        batches.append((time.perf_counter() - t0) / n)
    return statistics.median(batches)


# -- start-up --------------------------------------------------------------------------------------


def subprocess_seconds(python: str, code: str, env: dict[str, str], reps: int = 10) -> float:
    """Median wall time of ``python -c code`` (one untimed warm-up run first)."""
    cmd = [python, "-c", code]
    subprocess.run(cmd, env=env, check=True, cwd=tempfile.gettempdir())
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, cwd=tempfile.gettempdir())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@contextlib.contextmanager
def regular_install_python() -> Iterator[str]:
    """A throw-away venv where kitaru is a regular (non-editable) install.

    Emulates ``pip install kitaru-*.whl``: the ``kitaru/`` package is copied into the new venv's
    site-packages and byte-compiled (as pip does at install time). Its dependencies are reached
    through a ``.pth`` line naming the project venv's site-packages; ``.pth`` files in that
    folder (the editable finder) are *not* processed, so no editable hook is loaded.
    """
    tmp = Path(tempfile.mkdtemp(prefix="kitaru-bench-venv-"))
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")],
            check=True,
            capture_output=True,
        )
        python = tmp / "venv" / "bin" / "python"
        site = Path(
            subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        shutil.copytree(
            REPO / "kitaru", site / "kitaru", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        (site / "_kitaru_bench_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run(
            [str(python), "-m", "compileall", "-q", str(site / "kitaru")],
            check=True,
            capture_output=True,
        )
        yield str(python)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
