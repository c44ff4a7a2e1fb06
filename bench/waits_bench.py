"""Wait and replay latency figures (standalone: ``python bench/waits_bench.py``).

1. input -> continue: a runner polls a wait on a thread; the time from
   ``client.executions.input(...)`` returning to the next checkpoint's ``time.time()``
   (median of N; target <= 250 ms).
2. replay with an override, in-process (``flow.replay(...).wait()``; target <= 100 ms).
3. the same through the detached runner (``client.executions.replay`` then polling until
   completed; target <= 600 ms).
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

FLOWS = """
import time
import kitaru
from kitaru import checkpoint, flow

@checkpoint
def stamp(value):
    return time.time()

@flow
def gated(i):
    value = kitaru.wait(schema=int, name="go", timeout=30)
    return stamp(value)

@checkpoint
def fetch(topic):
    return "notes about " + topic

@checkpoint
def draft(notes):
    return "Draft from " + notes

@checkpoint
def publish(text):
    return "PUBLISHED: " + text

@flow
def pipeline(topic):
    return publish(draft(fetch(topic)))
"""

N = 10


def _pending(client, exec_id_holder: dict, known: set[str]) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for execution in client.executions.list(status="waiting"):
            if execution.exec_id not in known:
                return execution.exec_id
        time.sleep(0.002)
    raise RuntimeError("no waiting execution appeared")


def bench_input_latency(flows, client) -> list[float]:
    figures = []
    known: set[str] = set()
    for i in range(N):
        holder: dict = {}

        def run(i=i, holder=holder) -> None:
            holder["result"] = flows.gated.run(i).wait()

        thread = threading.Thread(target=run)
        thread.start()
        exec_id = _pending(client, holder, known)
        known.add(exec_id)
        time.sleep(0.05)  # the runner is polling now
        client.executions.input(exec_id, wait="go", value=i)
        returned = time.time()
        thread.join(30)
        figures.append((holder["result"] - returned) * 1000)
    return figures


def bench_replay(flows, client) -> tuple[list[float], list[float]]:
    source = flows.pipeline.run("t")
    source.wait()
    in_process, detached = [], []
    for _ in range(N):
        started = time.perf_counter()
        handle = flows.pipeline.replay(
            source.exec_id, from_="publish", overrides={"checkpoint.draft": "EDITED"}
        )
        assert handle.wait() == "PUBLISHED: EDITED"
        in_process.append((time.perf_counter() - started) * 1000)
    for _ in range(N):
        started = time.perf_counter()
        execution = client.executions.replay(
            source.exec_id, from_="publish", overrides={"checkpoint.draft": "EDITED"}
        )
        while True:
            current = client.executions.get(execution.exec_id)
            if current.status.value in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.005)
        assert current.status.value == "completed", current.failure
        detached.append((time.perf_counter() - started) * 1000)
    return in_process, detached


def _show(label: str, figures: list[float], target: float) -> None:
    median = statistics.median(figures)
    verdict = "ok" if median <= target else "OVER TARGET"
    print(
        f"{label:<42} median {median:7.1f} ms  min {min(figures):7.1f}  "
        f"max {max(figures):7.1f}  (target <= {target:.0f} ms: {verdict})"
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="kitaru-waits-bench-") as tmp:
        for name in list(os.environ):
            if name.startswith("KITARU_"):
                del os.environ[name]
        os.environ["KITARU_INTERACTIVE"] = "0"
        os.chdir(tmp)
        Path(tmp, "bench_flows.py").write_text(FLOWS)
        sys.path.insert(0, tmp)
        flows = importlib.import_module("bench_flows")
        from kitaru.client import KitaruClient
        from kitaru.runtime.launch import launched_runners

        client = KitaruClient()
        client.project.init(tmp)  # create the store before threads start reading it
        devnull = open(os.devnull, "w")  # noqa: SIM115 - silence the waiting hints
        stderr, sys.stderr = sys.stderr, devnull
        try:
            latency = bench_input_latency(flows, client)
            in_process, detached = bench_replay(flows, client)
        finally:
            sys.stderr = stderr
            devnull.close()
            for proc in launched_runners():
                proc.wait(20)
        print(f"kitaru waits bench, N={N} each")
        _show("input() returned -> flow continued", latency, 250)
        _show("replay with override, in-process", in_process, 100)
        _show("replay with override, detached runner", detached, 600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
