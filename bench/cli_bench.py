"""CLI start-up and listing latency: whole-process wall time of ``kitaru`` commands.

Standalone (standard library + kitaru): ``.venv/bin/python bench/cli_bench.py [--reps N]``.

Every figure is the median wall time of a whole ``kitaru ...`` process (the project venv's
console script, started with ``subprocess.run`` and an explicit environment, warm file cache:
one untimed warm-up run of each command first). The baseline **B** is
``.venv/bin/python -c "import click"`` (same interpreter) measured in the same run, with the
runs of every command and of B interleaved rep by rep so load hits them alike.

Targets:

1. ``kitaru executions list --limit 20 -o json`` on a store of 10,000 executions <= B + 80 ms;
2. ``kitaru executions list --status waiting -o json`` on the same store <= B + 80 ms;
3. figure 1 on 10,000 executions / the same on 1,000 executions <= 1.5;
4. ``kitaru --help`` <= B + 40 ms.

Each is measured in three modes: "no .pyc" (``PYTHONDONTWRITEBYTECODE=1``, as on the bench
machines, and a fresh copy of ``kitaru/`` first on PYTHONPATH: every start compiles kitaru from
source), "repo as is" (the environment and the repo's ``kitaru/`` exactly as they are, with
whatever ``.pyc`` files its ``__pycache__`` holds) and ".pyc warm" (``PYTHONDONTWRITEBYTECODE``
unset, another fresh copy whose ``.pyc`` files the warm-up runs write).

The stores are built once per run with the store API (``KITARU_DURABILITY=fast``) in a temporary
folder that is removed at the end: mostly completed executions, ~7% failed, ~1% cancelled and
~1% waiting (with a pending wait record), each with 1-3 checkpoint call records (one inline JSON
artifact each). ``--breakdown`` (automatic for a missed target) prints the slowest imports
(``-X importtime``) of the commands. Always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
PYTHON = str(BIN / "python")
KITARU = str(BIN / "kitaru")
SMALL, LARGE = 1_000, 10_000
LIST_LIMIT = 20

# -- building the stores ---------------------------------------------------------------------


@contextmanager
def _durability_fast() -> Iterator[None]:
    saved = os.environ.get("KITARU_DURABILITY")
    os.environ["KITARU_DURABILITY"] = "fast"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("KITARU_DURABILITY", None)
        else:
            os.environ["KITARU_DURABILITY"] = saved


def _status_for(index: int, rng: random.Random) -> str:
    if index % 100 == 37:  # exactly 1% waiting, spread over the whole id range
        return "waiting"
    roll = rng.random()
    if roll < 0.07:
        return "failed"
    if roll < 0.08:
        return "cancelled"
    return "completed"


def _call_record(exec_id: str, seq: int, name: str, status: str, now: str) -> dict:
    failure = None
    if status == "failed":
        failure = {
            "message": "ValueError: upstream returned 503",
            "exception_type": "ValueError",
            "traceback": 'Traceback (most recent call last):\n  File "flow.py", line 9\n',
            "origin": "user",
        }
    value = {"codec": "json", "data": {"step": name, "seq": seq, "text": f"notes about {seq}"}}
    return {
        "seq": seq,
        "call_id": f"{exec_id}.c{seq}",
        "name": name,
        "invocation_id": name,
        "checkpoint_type": None,
        "status": status,
        "started_at": now,
        "ended_at": now,
        "attempts": [
            {
                "attempt_id": f"{exec_id}.c{seq}.1",
                "status": status,
                "started_at": now,
                "ended_at": now,
                "metadata": {},
                "failure": failure,
            }
        ],
        "artifacts": []
        if status == "failed"
        else [
            {
                "artifact_id": f"{exec_id}.a{seq}.0",
                "name": name,
                "kind": None,
                "save_type": "step_output",
                "metadata": {},
                "value": value,
            }
        ],
        "metadata": {},
        "original_call_id": None,
        "cached_from": None,
        "parent_call_ids": [],
        "cache_key": f"{seq:064x}",
    }


def fill_store(project: Path, n: int, seed: int) -> dict[str, int]:
    """Add ``n`` executions to the existing ``project/.kitaru``; return the count per status."""
    from kitaru.store import Store, now_iso

    rng = random.Random(seed)
    counts: dict[str, int] = {}
    steps = ("fetch", "draft", "publish")
    with _durability_fast():
        store = Store.open_at(project / ".kitaru")
        for index in range(n):
            status = _status_for(index, rng)
            counts[status] = counts.get(status, 0) + 1
            exec_id = store.claim_execution_id()
            now = now_iso()
            flow = ("research", "report", "triage")[index % 3]
            spec = {
                "flow_name": flow,
                "source": {"module": "flows", "qualname": flow, "file": "flows.py"},
                "inputs": {"args": [{"codec": "json", "data": index}], "kwargs": {}},
                "settings": {"stack": "local", "cache": True, "retries": 0, "durability": None},
                "created_at": now,
            }
            failure = None
            if status == "failed":
                failure = {
                    "message": f"Execution {exec_id} failed: ValueError: upstream returned 503",
                    "exception_type": "ValueError",
                    "traceback": None,
                    "origin": "user",
                }
            state = {
                "status": status,
                "flow_name": flow,
                "stack": "local",
                "created_at": now,
                "started_at": now,
                "ended_at": None if status == "waiting" else now,
                "status_reason": {
                    "failed": "ValueError: upstream returned 503",
                    "cancelled": "cancelled by request",
                    "waiting": "waiting for input 'approve'",
                }.get(status),
                "failure": failure,
                "result": {"codec": "json", "data": f"done {index}"}
                if status == "completed"
                else None,
                "metadata": {},
                "cancel_requested": status == "cancelled",
                "runner": None,
                "original_exec_id": None,
                "updated_at": now,
            }
            store.create_execution(exec_id, spec, state)
            n_calls = rng.randint(1, 3)
            for seq in range(1, n_calls + 1):
                call_status = "failed" if status == "failed" and seq == n_calls else "completed"
                store.write_call(
                    exec_id, _call_record(exec_id, seq, steps[seq - 1], call_status, now)
                )
            if status == "waiting":
                store.write_wait(
                    exec_id,
                    {
                        "seq": n_calls + 1,
                        "wait_id": f"{exec_id}.w{n_calls + 1}",
                        "name": "approve",
                        "invocation_id": "approve",
                        "question": "ok?",
                        "schema": {"type": "boolean"},
                        "metadata": {},
                        "status": "pending",
                        "value": None,
                        "created_at": now,
                        "resolved_at": None,
                        "error": None,
                    },
                )
    return counts


def build_stores(sizes: dict[Path, int], chunk: int = 2_500) -> dict[Path, dict[str, int]]:
    """Create one store per project folder, filled in parallel chunks (worker processes)."""
    from kitaru.store import Store

    jobs = []
    for project, n in sizes.items():
        Store.init(project)
        jobs += [(project, min(chunk, n - start), start) for start in range(0, n, chunk)]
    counts: dict[Path, dict[str, int]] = {project: {} for project in sizes}
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ProcessPoolExecutor(workers) as pool:
        futures = [
            (project, pool.submit(fill_store, project, n, seed)) for project, n, seed in jobs
        ]
        for project, future in futures:
            for status, count in future.result().items():
                counts[project][status] = counts[project].get(status, 0) + count
    return counts


# -- timing -------------------------------------------------------------------------------------


REPO = Path(__file__).resolve().parent.parent


def snapshot_source(dest: Path) -> Path:
    """Copy ``kitaru/`` (no ``__pycache__``) into ``dest``; return ``dest`` (a PYTHONPATH entry).

    With ``dest`` first on PYTHONPATH the console script imports this copy: sys.path is
    searched before the editable install's finder (appended to ``sys.meta_path``), which is
    still loaded at start-up as usual. The copy is a consistent snapshot for the whole run
    (others may be editing the repo), and whether it has ``.pyc`` files is under our control.
    """
    shutil.copytree(
        REPO / "kitaru", dest / "kitaru", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return dest


def repo_pyc_status() -> tuple[int, int]:
    """(modules with a current .pyc, modules) under the repo's ``kitaru/``."""
    import importlib.util

    current = total = 0
    for source in (REPO / "kitaru").rglob("*.py"):
        total += 1
        try:
            header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:16]
        except OSError:
            continue
        info = source.stat()
        flags = int.from_bytes(header[4:8], "little")
        mtime = int.from_bytes(header[8:12], "little")
        size = int.from_bytes(header[12:16], "little")
        if header[:4] == importlib.util.MAGIC_NUMBER and (
            flags or (mtime == int(info.st_mtime) & 0xFFFFFFFF and size == info.st_size)
        ):
            current += 1
    return current, total


def command_env(
    project: Path | None, *, bytecode: str | None, source: Path | None = None
) -> dict[str, str]:
    """The subprocess environment: this one without KITARU_*, pointed at ``project``.

    ``bytecode``: ``"as is"`` keeps PYTHONDONTWRITEBYTECODE as it is here, ``"1"`` sets it,
    None unsets it. ``source``: a kitaru snapshot folder put first on PYTHONPATH.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    if bytecode is None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    elif bytecode != "as is":
        env["PYTHONDONTWRITEBYTECODE"] = bytecode
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    env["KITARU_INTERACTIVE"] = "0"
    if project is not None:
        env["KITARU_PROJECT_DIR"] = str(project)
    return env


def run_once(argv: list[str], env: dict[str, str], cwd: Path, capture: bool = False) -> tuple:
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-2000:]}"
        )
    return elapsed, done.stdout


def timed_series(
    series: dict[str, tuple[list[str], dict[str, str], Path]], reps: int
) -> dict[str, list[float]]:
    """Interleaved wall times: each rep runs every series once (after one warm-up each)."""
    for argv, env, cwd in series.values():
        run_once(argv, env, cwd)  # warm-up: file cache, and .pyc files when allowed
    samples: dict[str, list[float]] = {name: [] for name in series}
    for _ in range(reps):
        for name, (argv, env, cwd) in series.items():
            samples[name].append(run_once(argv, env, cwd)[0])
    return samples


def check_outputs(
    small: Path, large: Path, counts: dict[str, int], env: dict[str, str], source: Path | None
) -> None:
    """The commands under test list what they should, from the snapshot (untimed)."""
    if source is not None:
        code = "import kitaru, sys; sys.stdout.write(kitaru.__file__)"
        where = subprocess.run(
            [PYTHON, "-c", code], env=env, cwd=small, capture_output=True, text=True, check=True
        ).stdout
        assert Path(where).is_relative_to(source), f"kitaru imported from {where}, not {source}"
    for project in (small, large):
        env_p = {**env, "KITARU_PROJECT_DIR": str(project)}
        argv = [KITARU, "executions", "list", "--limit", str(LIST_LIMIT), "-o", "json"]
        items = _items(json.loads(run_once(argv, env_p, project, capture=True)[1]))
        assert len(items) == LIST_LIMIT, f"expected {LIST_LIMIT} items, got {len(items)}"
    env_l = {**env, "KITARU_PROJECT_DIR": str(large)}
    argv = [KITARU, "executions", "list", "--status", "waiting", "-o", "json"]
    items = _items(json.loads(run_once(argv, env_l, large, capture=True)[1]))
    assert len(items) == counts["waiting"], f"expected {counts['waiting']}, got {len(items)}"


def _items(data: object) -> list:
    if isinstance(data, dict):
        for key in ("items", "executions", "data"):
            if isinstance(data.get(key), list):
                return data[key]
    if isinstance(data, list):
        return data
    raise AssertionError(f"unexpected JSON shape: {str(data)[:200]}")


# -- breakdown ----------------------------------------------------------------------------------


def import_breakdown(argv: list[str], env: dict[str, str], cwd: Path, top: int = 12) -> str:
    """The slowest imports of one run of ``argv`` under ``python -X importtime``."""
    cmd = [PYTHON, "-X", "importtime", *(argv[1:] if argv[0] == PYTHON else argv)]
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    rows = []  # (self us, cumulative us, name as printed: indented by nesting depth)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, cumulative, name = line.split("|", 2)
        rows.append((int(head.split(":", 1)[1]), int(cumulative), name))
    total = sum(self_us for self_us, _, _ in rows)
    groups: dict[str, int] = {}
    for self_us, _, name in rows:
        root = name.strip().split(".")[0]
        groups[root] = groups.get(root, 0) + self_us
    by_root = sorted(groups.items(), key=lambda kv: -kv[1])[:top]
    kitaru_rows = [r for r in rows if r[2].strip().split(".")[0] == "kitaru"]
    lines = [
        f"    all imports {total / 1000:.1f} ms (sum of self times; kitaru modules "
        f"{sum(r[0] for r in kitaru_rows) / 1000:.1f} ms)",
        "    self time by top-level package: "
        + ", ".join(f"{name} {us / 1000:.1f}" for name, us in by_root),
        "    kitaru modules by self time: "
        + ", ".join(
            f"{name.strip()} {us / 1000:.1f}" for us, _, name in sorted(kitaru_rows)[::-1][:8]
        ),
        "    slowest imports (cumulative ms, self ms, module):",
    ]
    for self_us, cum_us, name in sorted(rows, key=lambda r: -r[1])[:top]:
        lines.append(f"      {cum_us / 1000:7.1f} {self_us / 1000:6.1f}  {name.rstrip()}")
    return "\n".join(lines)


PHASES = """
import os, sys, time
t = [time.perf_counter()]
import click
t.append(time.perf_counter())
import kitaru.cli
t.append(time.perf_counter())
import kitaru.client, kitaru.store
t.append(time.perf_counter())
found = kitaru.client.KitaruClient().executions.list(**{kwargs})
t.append(time.perf_counter())
sys.argv = ["kitaru", *{argv}]
out, sys.stdout = sys.stdout, open(os.devnull, "w")
try:
    kitaru.cli.main()
except SystemExit:
    pass
t.append(time.perf_counter())
sys.stdout = out
names = ["import click", "import kitaru.cli (+ command modules)",
         "import kitaru.client + kitaru.store", "client.executions.list()",
         "whole command again in-process (imports warm)"]
print("; ".join(f"{{n}} {{(b - a) * 1000:.1f}}" for n, a, b in zip(names, t, t[1:])))
"""


def phase_breakdown(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """In-process phases (ms) of one ``kitaru executions list`` run in the same environment."""
    args = argv[1:]
    kwargs: dict[str, object] = {}
    if "--limit" in args:
        kwargs["limit"] = int(args[args.index("--limit") + 1])
    if "--status" in args:
        kwargs["status"] = args[args.index("--status") + 1]
    code = PHASES.format(kwargs=repr(kwargs), argv=repr(args))
    done = subprocess.run(
        [PYTHON, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    return "    phases (ms): " + (done.stdout.strip() or done.stderr.strip()[-500:])


# -- main ---------------------------------------------------------------------------------------


MODES = {
    # name: (PYTHONDONTWRITEBYTECODE, kitaru source snapshot folder name or None = the repo)
    "no .pyc": ("1", "src-nopyc"),
    "repo as is": ("as is", None),
    ".pyc warm": (None, "src-pyc"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--breakdown", action="store_true", help="always print -X importtime")
    ns = parser.parse_args()
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="kitaru-cli-bench-")).resolve()
    try:
        run(ns.reps, ns.breakdown, tmp, started)
    except Exception:  # report, never gate
        traceback.print_exc()
        print("CLI bench failed (see the traceback above)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def run(reps: int, breakdown: bool, tmp: Path, started: float) -> None:
    """Build the stores in ``tmp``, time every series in every mode, print the results."""
    small, large = tmp / "small", tmp / "large"
    small.mkdir()
    large.mkdir()
    t0 = time.perf_counter()
    counts = build_stores({small: SMALL, large: LARGE})[large]
    built = time.perf_counter() - t0
    fresh, modules = repo_pyc_status()
    print(f"kitaru CLI bench: Python {sys.version.split()[0]}, median of {reps} runs each")
    print(
        f"  stores built in {built:.1f} s: {SMALL:,} and {LARGE:,} executions "
        f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))} in the large one)"
    )
    ambient = os.environ.get("PYTHONDONTWRITEBYTECODE", "<unset>")
    print(
        f"  modes: 'no .pyc' = PYTHONDONTWRITEBYTECODE=1 and a fresh copy of kitaru/ (every "
        "start compiles kitaru from source);\n"
        f"         'repo as is' = environment as is (PYTHONDONTWRITEBYTECODE={ambient}), the "
        f"repo's kitaru/ ({fresh}/{modules} modules had a current .pyc);\n"
        "         '.pyc warm' = PYTHONDONTWRITEBYTECODE unset, a copy of kitaru/ whose .pyc "
        "files the warm-up runs wrote"
    )
    results = {}
    lst = ["executions", "list", "--limit", str(LIST_LIMIT), "-o", "json"]
    for mode, (bytecode, folder) in MODES.items():
        source = snapshot_source(tmp / folder) if folder else None
        env = command_env(None, bytecode=bytecode, source=source)
        if mode == "no .pyc":
            check_outputs(small, large, counts, env, source)
        env_small = {**env, "KITARU_PROJECT_DIR": str(small)}
        env_large = {**env, "KITARU_PROJECT_DIR": str(large)}
        series = {
            "B": ([PYTHON, "-c", "import click"], env, tmp),
            "list20@10k": ([KITARU, *lst], env_large, large),
            "waiting@10k": (
                [KITARU, "executions", "list", "--status", "waiting", "-o", "json"],
                env_large,
                large,
            ),
            "list20@1k": ([KITARU, *lst], env_small, small),
            "help": ([KITARU, "--help"], env, tmp),
        }
        try:
            samples = timed_series(series, reps)
        except RuntimeError as exc:  # e.g. the repo's kitaru/ mid-edit by someone else
            print(f"  mode {mode!r} skipped: {exc}")
            continue
        results[mode] = (
            {k: statistics.median(v) for k, v in samples.items()},
            samples,
            series,
        )
    missed = print_table(results)
    wanted = list(missed)
    if breakdown:
        wanted += [
            (mode, name)
            for mode in ("no .pyc", ".pyc warm")
            for name in ("help", "list20@10k", "waiting@10k")
        ]
    if wanted:
        print()
        print("Breakdown of missed targets (python -X importtime, one run each; self = the")
        print("  module's own code incl. compiling it, cumulative = with what it imports):")
    for mode, name in dict.fromkeys(wanted):
        if mode not in results:
            continue
        argv, env, cwd = results[mode][2][name]
        shown = " ".join(Path(a).name if a == KITARU else a for a in argv)
        print(f"  [{mode}] {shown}")
        print(import_breakdown(argv, env, cwd))
        if name != "help":
            print(phase_breakdown(argv, env, cwd))
    print(f"total CLI bench time {time.perf_counter() - started:.1f} s (exit status always 0)")


# (label, series, allowed ms over B; None: the 10k / 1k ratio, <= SCALING_LIMIT)
TARGETS = (
    ("list --limit 20 @10k", "list20@10k", 80),
    ("list --status waiting @10k", "waiting@10k", 80),
    ("list --limit 20: 10k / 1k", "list20@10k", None),
    ("kitaru --help", "help", 40),
)
SCALING_LIMIT = 1.5


def print_table(results: dict) -> list[tuple[str, str]]:
    """Print the figures; return the (mode, series) of every missed target."""
    headers = ("measurement", "mode", "value", "baseline", "over B", "target", "result")
    table, missed = [], []
    for label, name, over_b in TARGETS:
        for mode, (med, _, _) in results.items():
            value, base = med[name] * 1000, med["B"] * 1000
            if over_b is None:
                small = med["list20@1k"] * 1000
                ratio = value / small
                ok = ratio <= SCALING_LIMIT
                cells = (f"{ratio:.2f} x", f"1k {small:.1f} ms", "-", f"<= {SCALING_LIMIT:g} x")
            else:
                ok = value <= base + over_b
                cells = (
                    f"{value:.1f} ms",
                    f"B {base:.1f}",
                    f"+{value - base:.1f}",
                    f"<= B+{over_b}",
                )
            if not ok:
                missed.append((mode, name))
            table.append((label, mode, *cells, "PASS" if ok else "FAIL"))
    widths = [max(len(str(r[i])) for r in (*table, headers)) for i in range(len(headers))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(fmt.format(*headers))
    print(fmt.format(*("-" * w for w in widths)))
    for r in table:
        print(fmt.format(*r).rstrip())
    print()
    print("Medians [min..max] in ms:")
    for mode, (med, samples, _) in results.items():
        parts = [
            f"{name} {med[name] * 1000:.1f} [{min(v) * 1000:.1f}..{max(v) * 1000:.1f}]"
            for name, v in samples.items()
        ]
        print(f"  {mode}: " + "; ".join(parts))
    print(f"{len(table) - len(missed)}/{len(table)} CLI figures within target")
    return missed


if __name__ == "__main__":
    sys.exit(main())
