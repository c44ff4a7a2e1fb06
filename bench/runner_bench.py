"""Runner start-up latency: from ``client.executions.retry(id)`` returning to the first new
checkpoint running in the detached runner.

Standalone (standard library + kitaru): ``.venv/bin/python bench/runner_bench.py [--reps N]``.
Each rep makes a failed execution in this process (its second checkpoint raises while a flag
file exists), removes the flag, calls ``retry`` and polls for the file that the retried
checkpoint writes ``time.time()`` into. The figure is the median of ``time.time()`` written by
the runner minus ``time.time()`` right after ``retry`` returned. For reference it also prints
the time ``retry`` itself took, ``python -c "import kitaru"`` and ``python -c`` importing the
runner's own modules (the floor of any runner start-up), measured in the same run. Always
exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

FLOW = """
import os
import time

from kitaru import checkpoint, flow

HERE = os.path.dirname(os.path.abspath(__file__))
FAIL = os.path.join(HERE, "FAIL")
STAMP = os.path.join(HERE, "STAMP")


@checkpoint
def setup(i: int) -> int:
    return i


@checkpoint
def stamp(v: int) -> int:
    if os.path.exists(FAIL):
        raise RuntimeError("failing on purpose (bench)")
    now = repr(time.time())
    with open(STAMP + ".tmp", "w") as fh:
        fh.write(now)
    os.replace(STAMP + ".tmp", STAMP)
    return v


@flow
def bench_flow(i: int) -> int:
    return stamp(setup(i))
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


RUNNER_IMPORTS = "import kitaru.runtime.runner, kitaru.runtime.execute"


def import_seconds(code: str, reps: int = 5) -> float:
    """Median wall time of ``python -c CODE`` (one warm-up run first)."""
    samples = []
    for index in range(reps + 1):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        if index:
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(project: Path, reps: int) -> tuple[list[float], list[float]]:
    """Return (retry-return -> first new checkpoint, retry call duration) samples."""
    from kitaru.client import KitaruClient
    from kitaru.runtime.flow import FlowHandle
    from kitaru.store import Store

    Store.init(project)
    stem = f"runner_bench_flow_{os.getpid()}"
    (project / f"{stem}.py").write_text(textwrap.dedent(FLOW))
    sys.path.insert(0, str(project))
    module = importlib.import_module(stem)
    client = KitaruClient()
    fail, stamp = project / "FAIL", project / "STAMP"
    latencies: list[float] = []
    calls: list[float] = []
    for index in range(reps + 1):  # the first rep is a warm-up
        fail.touch()
        failed = module.bench_flow.run(index)
        assert client.executions.get(failed.exec_id).status == "failed"
        fail.unlink()
        stamp.unlink(missing_ok=True)
        before = time.perf_counter()
        client.executions.retry(failed.exec_id)
        returned = time.time()
        call = time.perf_counter() - before
        deadline = time.monotonic() + 30
        while not stamp.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the retried checkpoint never ran")
            time.sleep(0.0005)
        ran_at = float(stamp.read_text())
        handle = FlowHandle(failed.exec_id, project / ".kitaru")
        assert handle.wait(timeout=30) == index
        while client.executions.get(failed.exec_id).status == "running" or Store.open_at(
            project / ".kitaru"
        ).runner_alive(failed.exec_id):
            time.sleep(0.005)  # the runner exits before the next rep starts
        if index:
            latencies.append(ran_at - returned)
            calls.append(call)
    return latencies, calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    ns = parser.parse_args()
    original = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="kitaru-runner-bench-") as tmp:
        project = Path(tmp).resolve()
        os.environ["KITARU_PROJECT_DIR"] = str(project)
        os.environ["KITARU_INTERACTIVE"] = "0"
        os.chdir(project)
        try:
            latencies, calls = measure(project, ns.reps)
        finally:
            os.chdir(original)
    floor = import_seconds("import kitaru")
    runner_floor = import_seconds(RUNNER_IMPORTS)
    median = statistics.median(latencies)
    print(f"kitaru runner bench: Python {sys.version.split()[0]}, {ns.reps} reps (median)")
    print(
        f"  retry returned -> first new checkpoint ran: {ms(median)} ms "
        f"[min {ms(min(latencies))} .. max {ms(max(latencies))}]"
    )
    print(f"  client.executions.retry() call itself:      {ms(statistics.median(calls))} ms")
    print(
        f'  baseline python -c "import kitaru":         {ms(floor)} ms (ratio {median / floor:.2f})'
    )
    print(
        f"  baseline python -c {RUNNER_IMPORTS!r}: {ms(runner_floor)} ms "
        f"(ratio {median / runner_floor:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
