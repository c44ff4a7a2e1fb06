"""cProfile breakdown of the per-checkpoint cost (full and fast durability).

    .venv/bin/python bench/profile_checkpoint.py [--top 10] [--k 200]

Runs one K-checkpoint flow per mode in a fresh project under cProfile and prints the top
entries by cumulative time inside kitaru, the top entries by own time anywhere (syscalls show
up there), and how many file-system calls each checkpoint makes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runtime_bench as rb  # noqa: E402

_COUNTED = ("fsync", "open", "replace", "mkdir", "chmod", "fchmod", "stat", "listdir", "close")


def count_syscalls(k: int, durability: str) -> Counter[str]:
    """os.* calls made by a K-checkpoint flow minus an empty flow, per checkpoint."""
    counts: Counter[str] = Counter()
    originals = {name: getattr(os, name) for name in _COUNTED}

    def wrap(name):
        original = originals[name]

        def counted(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)

        return counted

    def measure(action) -> Counter[str]:
        counts.clear()
        for name in _COUNTED:
            setattr(os, name, wrap(name))
        try:
            with rb.fresh_project(durability):
                counts.clear()
                action()
        finally:
            for name, original in originals.items():
                setattr(os, name, original)
        return Counter(counts)

    full = measure(lambda: rb.k_flow.run(k))
    empty = measure(lambda: rb.empty_flow.run())
    return Counter({n: (full[n] - empty[n]) / k for n in _COUNTED if full[n] - empty[n]})


def profile(k: int, durability: str, top: int) -> None:
    rb.timed_in_fresh_project(lambda: rb.k_flow.run(k), durability)  # warm-up
    prof = cProfile.Profile()
    with rb.fresh_project(durability):
        prof.enable()
        rb.k_flow.run(k)
        prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    total = stats.total_tt
    print(
        f"=== durability={durability}: K={k} checkpoints, {total * 1000:.1f} ms profiled "
        f"({total / k * 1000:.3f} ms per checkpoint, profiler overhead included)"
    )
    stats.sort_stats("cumulative").print_stats(r"/kitaru/", top)
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    # Drop pstats' preamble lines; keep the tables.
    keep = [
        ln
        for ln in text.splitlines()
        if ln.strip()
        and not ln.lstrip().startswith(("Ordered by", "List reduced", "function calls"))
    ]
    print("\n".join(keep))
    per = count_syscalls(k, durability)
    print("os.* calls per checkpoint: " + ", ".join(f"{n}={v:g}" for n, v in sorted(per.items())))
    print()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--k", type=int, default=200)
    args = parser.parse_args()
    for durability in ("full", "fast"):
        profile(args.k, durability, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
