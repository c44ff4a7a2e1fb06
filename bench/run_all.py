"""Kitaru benchmarks: figures as ratios to baselines measured in the same run.

Run with ``make bench`` (or ``.venv/bin/python bench/run_all.py``). Prints the runtime table,
then runs runner_bench.py, waits_bench.py and cli_bench.py (each in its own process) and prints
their sections. Always exits 0: the benchmarks report, they do not gate. See bench/README.md
for what each number means.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runtime_bench as rb  # noqa: E402

REPS = int(os.environ.get("KITARU_BENCH_REPS", "15"))
HERE = Path(__file__).resolve().parent
# The standalone benchmarks run after the runtime table, each in its own process:
# (section name, script, timeout in seconds). KITARU_BENCH_SKIP=cli,waits skips some.
SECTIONS = (
    ("runner", "runner_bench.py", 90),
    ("waits", "waits_bench.py", 90),
    ("cli", "cli_bench.py", 240),
)
W_WRITES = 210  # baseline writes of each kind, spread over the reps


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def spread(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"{ms(ordered[len(ordered) // 10])}..{ms(ordered[len(ordered) * 9 // 10])}"


def measure() -> tuple[dict[str, float], dict[str, list[float]], list[float], list[list[float]]]:
    """Flow figures (median over REPS) and the W/w baselines, interleaved rep by rep.

    Each rep takes a batch of W samples and one batch of K w writes, then times every flow once,
    each timed run in its own fresh project, so load from other processes hits baselines and
    flows alike. Returns the flow medians, the flow samples, the W samples and the w batches.
    """
    runs = {
        "empty_full": (lambda: rb.empty_flow.run(), "full"),
        "k_full": (lambda: rb.k_flow.run(rb.K), "full"),
        "empty_fast": (lambda: rb.empty_flow.run(), "fast"),
        "k_fast": (lambda: rb.k_flow.run(rb.K), "fast"),
        "three_full": (lambda: rb.three_flow.run("x").get(), "full"),
        # Informational: the same K flow with the checkpoint cache turned off.
        "k_full_nocache": (lambda: rb.k_flow.run(rb.K, cache=False), "full"),
        "k_fast_nocache": (lambda: rb.k_flow.run(rb.K, cache=False), "fast"),
    }
    # Warm-up (imports, first-call costs), not timed.
    rb.atomic_write_samples(durable=True, n=10)
    for action, durability in runs.values():
        rb.timed_in_fresh_project(action, durability)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    durable_w: list[float] = []
    fast_batches: list[list[float]] = []
    per_rep = -(-W_WRITES // REPS)
    for _ in range(REPS):
        durable_w += rb.atomic_write_samples(durable=True, n=per_rep)
        fast_batches.append(rb.atomic_write_samples(durable=False, n=rb.K))
        for name, (action, durability) in runs.items():
            samples[name].append(rb.timed_in_fresh_project(action, durability))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return medians, samples, durable_w, fast_batches


def per_write(batches: list[list[float]], part: slice = slice(None)) -> list[float]:
    """Seconds per write of each batch (mean over the writes ``part`` selects)."""
    return [statistics.fmean(batch[part]) for batch in batches]


def noisy(durable_w: list[float], fast_w: list[float], flows: dict[str, list[float]]) -> bool:
    def p90_p10(samples: list[float]) -> float:
        ordered = sorted(samples)
        return ordered[len(ordered) * 9 // 10] / ordered[len(ordered) // 10]

    wide = any(max(v) / min(v) > 3 for v in flows.values())
    # w values are means of K writes, which hides single outliers: a lower bar for their spread.
    return p90_p10(durable_w) > 2.5 or p90_p10(fast_w) > 2.0 or wide


def run_sections() -> None:
    """Run the standalone benchmarks one after another, printing their output as it comes."""
    skip = {name.strip() for name in os.environ.get("KITARU_BENCH_SKIP", "").split(",")}
    for name, script, timeout in SECTIONS:
        print()
        print(f"== {script} " + "=" * max(0, 60 - len(script)))
        if name in skip:
            print(f"(skipped: KITARU_BENCH_SKIP contains {name!r})")
            continue
        sys.stdout.flush()
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, str(HERE / script)], timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            print(f"({script} timed out after {timeout} s and was stopped)")
            continue
        except OSError as exc:
            print(f"({script} could not run: {exc})")
            continue
        if done.returncode:
            print(f"({script} exited with status {done.returncode})")
        print(f"({script}: {time.perf_counter() - started:.1f} s)")


def main() -> int:
    started = time.perf_counter()
    try:
        runtime_section()
    except Exception as exc:  # report, never gate
        print(f"(runtime section failed: {type(exc).__name__}: {exc})")
    run_sections()
    print()
    print(
        f"all bench sections done in {time.perf_counter() - started:.1f} s (exit status always 0)"
    )
    return 0


def runtime_section() -> None:
    started = time.perf_counter()
    print(f"kitaru bench: Python {platform.python_version()} on {platform.platform()}")
    print(f"  {REPS} reps per figure (median), each in a fresh temp project; K={rb.K}")
    print(f"  PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '<unset>')}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  load average (1 min) at start: {load:.2f} on {os.cpu_count()} CPUs")
    print()

    flows, flow_samples, durable_w, fast_batches = measure()
    fast_w = per_write(fast_batches)
    W = statistics.median(durable_w)
    w = statistics.median(fast_w)
    P = rb.plain_call_seconds(rb.step_fn, 1)
    P_empty = rb.plain_call_seconds(rb.empty_fn)
    P_three = rb.plain_call_seconds(rb.three_fn, "x")

    per_cp_full = (flows["k_full"] - flows["empty_full"]) / rb.K - P
    per_cp_fast = (flows["k_fast"] - flows["empty_fast"]) / rb.K - P

    base = sys.executable
    env_as_is = dict(os.environ)
    env_pyc = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    py_pass = rb.subprocess_seconds(base, "pass", env_as_is)
    imp_as_is = rb.subprocess_seconds(base, "import kitaru", env_as_is)
    imp_pyc = rb.subprocess_seconds(base, "import kitaru", env_pyc)  # warm-up run writes .pyc
    try:
        with rb.regular_install_python() as regular:
            reg_pass = rb.subprocess_seconds(regular, "pass", env_as_is)
            reg_imp = rb.subprocess_seconds(regular, "import kitaru", env_as_is)
    except Exception as exc:  # the emulated install is a nice-to-have
        print(f"(regular-install start-up skipped: {exc})")
        reg_pass = reg_imp = None

    rows = []

    def row(name, value, base_name, base_value, target_ratio=None, target_ms=None):
        ratio = value / base_value if base_value else float("nan")
        if target_ratio is not None:
            target, ok = f"<= {target_ratio:g} x", ratio <= target_ratio
        elif target_ms is not None:
            target, ok = f"<= {target_ms:g} ms", value * 1000 <= target_ms
        else:
            target, ok = "-", None
        verdict = "-" if ok is None else ("PASS" if ok else "FAIL")
        rows.append(
            (name, ms(value), f"{base_name} {ms(base_value)}", f"{ratio:.2f}", target, verdict)
        )

    row("1. per-checkpoint overhead, full", per_cp_full, "W", W, target_ratio=2)
    row("2. per-checkpoint overhead, fast", per_cp_fast, "w", w, target_ratio=3)
    row("3. empty flow .run(), full", flows["empty_full"], "W", W, target_ratio=6)
    row("4. 3-checkpoint flow .run().get(), full", flows["three_full"], "W", W, target_ratio=12)
    row("5a. import kitaru, editable, env as is", imp_as_is, "pass", py_pass, target_ms=120)
    row("5b. import kitaru, editable, .pyc warm", imp_pyc, "pass", py_pass, target_ms=120)
    if reg_imp is not None:
        row("5c. import kitaru, regular install", reg_imp, "pass", reg_pass, target_ms=120)

    headers = ("measurement", "value ms", "baseline ms", "ratio", "target", "result")
    widths = [max(len(str(r[i])) for r in (*rows, headers)) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w_}}}" for w_ in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w_ for w_ in widths)))
    for r in rows:
        print(line.format(*r))

    print()
    print("Baselines (same run):")
    print(f"  W  durable write_atomic of a 1 KB record (median of {len(durable_w)}): {ms(W)} ms")
    print(
        f"  w  write_atomic without fsync, per write of a batch of K={rb.K} (median of "
        f"{len(fast_w)} batches): {ms(w)} ms"
    )
    first = [x for batch in fast_batches for x in batch[:5]]
    last = [x for batch in fast_batches for x in batch[-5:]]
    early = statistics.median([x for batch in fast_batches for x in batch[:14]])
    print(
        f"     writes 1-5 of a batch {ms(statistics.median(first))} ms each, writes "
        f"{rb.K - 4}-{rb.K} {ms(statistics.median(last))} ms (on some disks every file created "
        "since the last sync makes the next one dearer)"
    )
    print(
        f"     (median of single writes 1-14 only: {ms(early)} ms; fast overhead "
        f"{per_cp_fast / early:.2f} times that)"
    )
    print(
        f"  P  plain call of the checkpoint function: {P * 1e9:.0f} ns "
        f"(empty flow body {P_empty * 1e9:.0f} ns, 3-step body {P_three * 1e9:.0f} ns)"
    )
    print(f"  W spread p10..p90 {spread(durable_w)} ms; w spread {spread(fast_w)} ms")
    print("Flow timings, median [min..max] over the reps:")
    for name, value in flows.items():
        lo, hi = min(flow_samples[name]), max(flow_samples[name])
        print(f"  {name:<15} {ms(value):>8} ms  [{ms(lo)}..{ms(hi)}]")
    nocache_full = (flows["k_full_nocache"] - flows["empty_full"]) / rb.K - P
    nocache_fast = (flows["k_fast_nocache"] - flows["empty_fast"]) / rb.K - P
    print(
        f"  per-checkpoint overhead with cache=False (info): full {ms(nocache_full)} ms "
        f"= {nocache_full / W:.2f} W, fast {ms(nocache_fast)} ms = {nocache_fast / w:.2f} w"
    )
    print("Start-up notes: 5a/5b use the project venv's editable install (setuptools finder);")
    print("  5b ran once with PYTHONDONTWRITEBYTECODE unset first, to write the .pyc files.")
    if reg_imp is not None:
        print("  5c emulates a wheel install: kitaru/ copied into a fresh venv's site-packages and")
        print("  byte-compiled like pip does; deps via a .pth to the project venv; env as is.")
    fails = sum(1 for r in rows if r[-1] == "FAIL")
    if noisy(durable_w, fast_w, flow_samples):
        print()
        print("WARNING: noisy run (W p90/p10 > 2.5, w's > 2, or a flow's max/min > 3):")
        print("  something else is using the disk or CPUs; ratios are unreliable. Re-run on a")
        print("  quiet machine.")
    print()
    print(
        f"{len(rows) - fails}/{len(rows)} within target; "
        f"runtime bench time {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
