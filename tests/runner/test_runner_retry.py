"""Retry from outside: a detached runner re-imports the flow and finishes the execution in place."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from runner_helpers import (
    attempt_statuses,
    call_statuses,
    child_env,
    effect_counts,
    effects,
    forget_module,
    handle,
    import_script,
    run_script,
    settle,
    stop,
    unique_stem,
    wait_until,
    write_script,
)

from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.errors import (
    FailureOrigin,
    KitaruDivergenceError,
    KitaruExecutionError,
    KitaruStateError,
    KitaruUserCodeError,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX runner processes")

PIPELINE = """
@checkpoint
def fetch(x: int) -> int:
    effect(f"fetch {x}")
    return x * 10


@checkpoint
def flaky(v: int) -> int:
    effect("flaky")
    if os.path.exists(_p("FAIL")):
        raise RuntimeError("flaky failed on purpose")
    return v + 1


@checkpoint
def finish(v: int) -> dict:
    effect("finish")
    gate("GO")
    return {"value": v, "pid": os.getpid()}


@flow
def pipeline(x: int) -> dict:
    a = fetch(x)
    b = fetch(x + 1)
    c = flaky(a + b)
    return finish(c)
"""


@pytest.fixture
def pipeline_module(project_dir: Path):
    """The PIPELINE script imported as a module (so ``.run()`` works in this process)."""
    path = write_script(project_dir, unique_stem("pipeline"), PIPELINE)
    try:
        yield import_script(path)
    finally:
        forget_module(path)


def _failed_pipeline(module, project_dir: Path) -> str:
    (project_dir / "FAIL").touch()
    (project_dir / "GO").touch()
    handle_ = module.pipeline.run(3)
    with pytest.raises(KitaruUserCodeError, match="flaky failed on purpose"):
        handle_.wait(timeout=5)
    (project_dir / "FAIL").unlink()
    (project_dir / "GO").unlink()
    return handle_.exec_id


# -- 1. retry of a failed run -------------------------------------------------------------------


def test_retry_completes_in_place_without_rerunning_finished_checkpoints(
    pipeline_module, project_dir: Path
) -> None:
    exec_id = _failed_pipeline(pipeline_module, project_dir)
    assert effects(project_dir) == ["fetch 3", "fetch 4", "flaky"]
    client = KitaruClient()

    started = time.monotonic()
    retried = client.executions.retry(exec_id)
    returned_after = time.monotonic() - started
    # The runner is blocked in `finish` until GO exists: retry cannot have waited for it.
    assert retried.exec_id == exec_id
    assert retried.status == ExecutionStatus.RUNNING
    assert returned_after < 5
    assert retried.failure is None
    (project_dir / "GO").touch()

    result = handle(exec_id).wait(timeout=20)
    assert result["value"] == 71  # fetch(3)=30 + fetch(4)=40, flaky -> 71
    assert result["pid"] != os.getpid()  # finished by the detached runner
    assert effect_counts(project_dir) == {"fetch 3": 1, "fetch 4": 1, "flaky": 2, "finish": 1}

    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.failure is None
    assert [e.exec_id for e in client.executions.list()] == [exec_id]  # same id, no new run
    assert call_statuses(execution) == {
        "fetch": "completed",
        "fetch_2": "completed",
        "flaky": "completed",
        "finish": "completed",
    }
    assert attempt_statuses(execution, "flaky") == ["failed", "completed"]
    flaky = next(c for c in execution.checkpoints if c.invocation_id == "flaky")
    assert flaky.attempts[0].failure is not None
    assert "flaky failed on purpose" in flaky.attempts[0].failure.message
    assert flaky.attempts[1].failure is None
    assert len({a.attempt_id for a in flaky.attempts}) == 2
    assert attempt_statuses(execution, "fetch") == ["completed"]
    assert attempt_statuses(execution, "fetch_2") == ["completed"]


@pytest.mark.corrupts_store  # the damaged start line stays: doctor reports it
def test_retry_works_past_a_damaged_start_line(pipeline_module, project_dir: Path) -> None:
    exec_id = _failed_pipeline(pipeline_module, project_dir)
    started = project_dir / ".kitaru" / "executions" / exec_id / "started.jsonl"
    started.write_bytes(b"{not a start line}\n" + started.read_bytes())
    client = KitaruClient()
    assert call_statuses(client.executions.get(exec_id))["flaky"] == "failed"

    client.executions.retry(exec_id)
    running = wait_until(
        lambda: (e := client.executions.get(exec_id)) and "finish" in call_statuses(e) and e
    )
    # Blocked in `finish`, which has a start line and no record yet.
    assert call_statuses(running)["finish"] == "running"
    (project_dir / "GO").touch()
    assert handle(exec_id).wait(timeout=20)["value"] == 71
    assert settle(exec_id).status == ExecutionStatus.COMPLETED


def test_retry_returns_at_once_and_wait_returns_the_result(
    pipeline_module, project_dir: Path
) -> None:
    exec_id = _failed_pipeline(pipeline_module, project_dir)
    (project_dir / "GO").touch()  # nothing blocks: the runner may finish before we look
    retried = KitaruClient().executions.retry(exec_id)
    assert retried.status in (ExecutionStatus.RUNNING, ExecutionStatus.COMPLETED)
    assert handle(exec_id).wait(timeout=20)["value"] == 71
    assert handle(exec_id).get()["value"] == 71
    assert settle(exec_id).status == ExecutionStatus.COMPLETED


def test_retry_refuses_executions_that_are_not_failed(pipeline_module, project_dir: Path) -> None:
    client = KitaruClient()
    (project_dir / "GO").touch()
    done = pipeline_module.pipeline.run(1)
    assert done.wait(timeout=5) == {"value": 31, "pid": os.getpid()}
    with pytest.raises(KitaruStateError, match="Only failed executions can be retried"):
        client.executions.retry(done.exec_id)

    exec_id = _failed_pipeline(pipeline_module, project_dir)
    client.executions.retry(exec_id)  # blocked in `finish` until GO: still running
    try:
        with pytest.raises(KitaruStateError):
            client.executions.retry(exec_id)
    finally:
        (project_dir / "GO").touch()
    assert settle(exec_id).status == ExecutionStatus.COMPLETED


# -- 3. a flow defined in a script's __main__ ---------------------------------------------------

MAIN_SCRIPT = """
from pydantic import BaseModel


class Release(BaseModel):
    version: str
    notes: list[str]


@checkpoint
def details(version: str) -> Release:
    effect("details")
    return Release(version=version, notes=["fast", "safe"])


@checkpoint
def publish(release: Release) -> str:
    kind = type(release)
    effect(f"publish {kind.__module__}.{kind.__qualname__} {isinstance(release, Release)}")
    if os.path.exists(_p("FAIL")):
        raise RuntimeError("publish failed on purpose")
    return f"{release.version}:{len(release.notes)}"


@flow
def release_flow(version: str) -> dict:
    release = details(version)
    published = publish(release)
    return {
        "published": published,
        "class": f"{type(release).__module__}.{type(release).__qualname__}",
        "is_release": isinstance(release, Release),
        "notes": release.notes,
    }


if __name__ == "__main__":
    effect("main block")
    handle = release_flow.run(sys.argv[1])
    print(handle.exec_id)
"""


def test_main_script_flow_retries_with_a_pydantic_class_from_the_script(
    project_dir: Path,
) -> None:
    script = write_script(project_dir, "release_script", MAIN_SCRIPT)
    (project_dir / "FAIL").touch()
    first = run_script(script, "2.0")
    assert first.returncode == 0, first.stderr
    exec_id = first.stdout.strip().splitlines()[-1]
    assert KitaruClient().executions.get(exec_id).status == ExecutionStatus.FAILED
    assert effects(project_dir) == ["main block", "details", "publish __main__.Release True"]
    (project_dir / "FAIL").unlink()

    KitaruClient().executions.retry(exec_id)
    result = handle(exec_id).wait(timeout=20)
    assert result == {
        "published": "2.0:2",
        "class": "__main__.Release",
        "is_release": True,
        "notes": ["fast", "safe"],
    }
    # In the runner the reused `details` output loaded as the script's own class, the
    # main block did not run again, and `details` was not re-executed.
    assert effect_counts(project_dir) == {
        "main block": 1,
        "details": 1,
        "publish __main__.Release True": 2,
    }
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.COMPLETED
    assert attempt_statuses(execution, "publish") == ["failed", "completed"]
    assert not (project_dir / ".kitaru" / "executions" / exec_id / "runner.err").exists()


# -- 4. flow.run() at module level, without the main guard --------------------------------------

UNGUARDED = """
@checkpoint
def work() -> int:
    effect("work")
    if os.path.exists(_p("FAIL")):
        raise RuntimeError("work failed on purpose")
    return 1


@flow
def unguarded() -> int:
    effect("body")
    return work()


handle = unguarded.run()
print(handle.exec_id)
"""


def test_unguarded_module_level_run_fails_the_retry_before_the_flow_starts(
    project_dir: Path,
) -> None:
    script = write_script(project_dir, "unguarded_script", UNGUARDED)
    (project_dir / "FAIL").touch()
    first = run_script(script)
    assert first.returncode == 0, first.stderr
    exec_id = first.stdout.strip().splitlines()[-1]
    (project_dir / "FAIL").unlink()
    before = effects(project_dir)
    assert before == ["body", "work"]

    KitaruClient().executions.retry(exec_id)
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.failure is not None
    assert execution.failure.origin == FailureOrigin.RUNTIME
    assert 'if __name__ == "__main__":' in execution.failure.message
    assert "KitaruContextError" in execution.failure.message
    assert execution.status_reason.startswith("The runner could not start the flow")
    runner_err = project_dir / ".kitaru" / "executions" / exec_id / "runner.err"
    assert runner_err.is_file()
    text = runner_err.read_text()
    assert text.startswith("Traceback")
    assert "KitaruContextError" in text
    assert effects(project_dir) == before  # the flow body never ran in the runner
    # The recorded calls are untouched: the failed one still has only its first attempt.
    assert attempt_statuses(execution, "work") == ["failed"]
    with pytest.raises(KitaruExecutionError, match="could not start"):
        handle(exec_id).wait(timeout=5)


# -- 5. an import failure in the runner ---------------------------------------------------------

SIMPLE_MAIN = """
@checkpoint
def first() -> int:
    effect("first")
    return 20


@checkpoint
def second(v: int) -> int:
    effect("second")
    if os.path.exists(_p("FAIL")):
        raise RuntimeError("second failed on purpose")
    return v + 2


@flow
def simple() -> int:
    return second(first())


if __name__ == "__main__":
    print(simple.run().exec_id)
"""


@pytest.mark.parametrize("damage", ["deleted", "renamed", "syntax_error", "bad_import"])
def test_import_failure_in_the_runner_is_recorded(project_dir: Path, damage: str) -> None:
    script = write_script(project_dir, "simple_script", SIMPLE_MAIN)
    original = script.read_text()
    (project_dir / "FAIL").touch()
    first = run_script(script)
    assert first.returncode == 0, first.stderr
    exec_id = first.stdout.strip().splitlines()[-1]
    (project_dir / "FAIL").unlink()

    if damage == "deleted":
        script.unlink()
        expected = "FileNotFoundError"
    elif damage == "renamed":
        script.rename(project_dir / "simple_script_v2.py")
        expected = "FileNotFoundError"
    elif damage == "syntax_error":
        script.write_text(original + "\ndef broken(:\n    pass\n")
        expected = "SyntaxError"
    else:
        script.write_text("import no_such_module_for_kitaru_tests\n" + original)
        expected = "ModuleNotFoundError"

    KitaruClient().executions.retry(exec_id)
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.failure is not None
    assert execution.failure.origin == FailureOrigin.RUNTIME
    assert execution.status_reason.startswith("The runner could not start the flow")
    assert expected in execution.status_reason
    runner_err = project_dir / ".kitaru" / "executions" / exec_id / "runner.err"
    assert runner_err.is_file()
    assert expected in runner_err.read_text()
    assert "Traceback" in runner_err.read_text()
    assert effect_counts(project_dir) == {"first": 1, "second": 1}

    # Once the script is back, the same execution retries to completion.
    script.write_text(original)
    KitaruClient().executions.retry(exec_id)
    assert handle(exec_id).wait(timeout=20) == 22
    assert effect_counts(project_dir) == {"first": 1, "second": 2}
    assert settle(exec_id).status == ExecutionStatus.COMPLETED


# -- 6. concurrent retries start exactly one runner ---------------------------------------------

SLOW_RETRY = """
@checkpoint
def prepare() -> int:
    effect("prepare")
    return 5


@checkpoint
def slow(v: int) -> int:
    effect("slow")
    if os.path.exists(_p("FAIL")):
        raise RuntimeError("slow failed on purpose")
    time.sleep(0.3)
    return v * 3


@flow
def slow_flow() -> int:
    return slow(prepare())


if __name__ == "__main__":
    print(slow_flow.run().exec_id)
"""


def _failed_slow_flow(project_dir: Path) -> str:
    script = write_script(project_dir, "slow_script", SLOW_RETRY)
    (project_dir / "FAIL").touch()
    first = run_script(script)
    assert first.returncode == 0, first.stderr
    (project_dir / "FAIL").unlink()
    return first.stdout.strip().splitlines()[-1]


def test_two_concurrent_retries_in_threads_start_one_runner(project_dir: Path) -> None:
    exec_id = _failed_slow_flow(project_dir)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []
    lock = threading.Lock()

    def retry() -> None:
        client = KitaruClient()
        barrier.wait(timeout=10)
        try:
            result: object = client.executions.retry(exec_id)
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    successes = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(successes) == 1, outcomes
    assert len(errors) == 1 and isinstance(errors[0], KitaruStateError), outcomes
    assert handle(exec_id).wait(timeout=20) == 15
    assert settle(exec_id).status == ExecutionStatus.COMPLETED
    assert effect_counts(project_dir) == {"prepare": 1, "slow": 2}


RETRY_FROM_PROCESS = """
import os, sys, time
from kitaru.client import KitaruClient
from kitaru.errors import KitaruStateError

go = sys.argv[2]
deadline = time.monotonic() + 20
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.002)
try:
    KitaruClient().executions.retry(sys.argv[1])
except KitaruStateError as exc:
    print("STATE_ERROR", exc)
else:
    print("OK")
"""


def test_two_concurrent_retries_in_processes_start_one_runner(
    project_dir: Path, tmp_path: Path
) -> None:
    exec_id = _failed_slow_flow(project_dir)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(RETRY_FROM_PROCESS), exec_id, str(go)],
            cwd=project_dir,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        go.touch()  # both processes poll for `go`: they call retry together
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            outputs.append(out.strip())
    finally:
        for proc in procs:
            stop(proc)
    assert sorted(o.split()[0] for o in outputs) == ["OK", "STATE_ERROR"], outputs
    # The runner was started by another process: wait for it to finish (and exit).
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.COMPLETED
    assert handle(exec_id).get() == 15
    assert effect_counts(project_dir) == {"prepare": 1, "slow": 2}


# -- 7. divergence ------------------------------------------------------------------------------

DIVERGING = """
@checkpoint
def load() -> int:
    effect("load")
    return 1


@checkpoint
def transform(v: int) -> int:
    effect("transform")
    if os.path.exists(_p("FAIL")):
        raise RuntimeError("transform failed on purpose")
    return v + 1


@checkpoint
def summarize(v: int) -> int:
    effect("summarize")
    return v * 100


@flow
def diverging() -> int:
    v = load()
    return transform(v)


if __name__ == "__main__":
    print(diverging.run().exec_id)
"""


def test_changed_flow_body_fails_the_retry_with_divergence(project_dir: Path) -> None:
    script = write_script(project_dir, "diverging_script", DIVERGING)
    (project_dir / "FAIL").touch()
    first = run_script(script)
    assert first.returncode == 0, first.stderr
    exec_id = first.stdout.strip().splitlines()[-1]
    (project_dir / "FAIL").unlink()
    # Position 2 recorded `transform`; the edited body calls `summarize` there.
    script.write_text(script.read_text().replace("return transform(v)", "return summarize(v)"))

    KitaruClient().executions.retry(exec_id)
    with pytest.raises(KitaruDivergenceError) as caught:
        handle(exec_id).wait(timeout=20)
    assert caught.value.failure_origin == FailureOrigin.DIVERGENCE
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.failure is not None
    assert execution.failure.origin == FailureOrigin.DIVERGENCE
    assert "diverged" in execution.failure.message
    assert effect_counts(project_dir) == {"load": 1, "transform": 1}  # summarize never ran
    assert call_statuses(execution) == {"load": "completed", "transform": "failed"}


SWALLOWING = DIVERGING.replace(
    """    v = load()
    return transform(v)""",
    """    results = []
    for step in (load, transform):
        try:
            results.append(step(*([results[-1]] if results else [])))
        except Exception:
            results.append(-1)
    if os.path.exists(_p("FAIL")):
        raise RuntimeError("the flow failed on purpose")
    return results[-1]""",
)


def test_divergence_cannot_be_swallowed_by_user_except_exception(project_dir: Path) -> None:
    script = write_script(project_dir, "swallowing_script", SWALLOWING)
    (project_dir / "FAIL").touch()
    first = run_script(script)
    assert first.returncode == 0, first.stderr
    exec_id = first.stdout.strip().splitlines()[-1]
    assert KitaruClient().executions.get(exec_id).status == ExecutionStatus.FAILED
    (project_dir / "FAIL").unlink()
    # Position 1 recorded `load`; the edited body calls `summarize` there.
    script.write_text(script.read_text().replace("(load, transform)", "(summarize, transform)"))

    KitaruClient().executions.retry(exec_id)
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.failure is not None
    assert execution.failure.origin == FailureOrigin.DIVERGENCE


# -- 9. Execution.retry() -----------------------------------------------------------------------


def test_execution_retry_method(pipeline_module, project_dir: Path) -> None:
    exec_id = _failed_pipeline(pipeline_module, project_dir)
    execution = KitaruClient().executions.get(exec_id)
    assert execution.status == ExecutionStatus.FAILED
    (project_dir / "GO").touch()
    retried = execution.retry()
    assert retried.exec_id == exec_id
    assert retried.status in (ExecutionStatus.RUNNING, ExecutionStatus.COMPLETED)
    assert handle(exec_id).wait(timeout=20)["value"] == 71
    refreshed = settle(exec_id)
    assert refreshed.status == ExecutionStatus.COMPLETED
    with pytest.raises(KitaruStateError):
        refreshed.retry()


# -- 3b. a __main__ script with postponed annotations and a dataclass ----------------------------

DATACLASS_MAIN = """
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: int


@checkpoint
def coordinate(n: int) -> int:
    effect("coordinate")
    if os.path.exists(_p("FAIL")):
        raise RuntimeError("coordinate failed on purpose")
    return n


@flow
def point_flow() -> int:
    point = Point(coordinate(2), 3)
    return point.x + point.y


if __name__ == "__main__":
    print(point_flow.run().exec_id)
"""


def test_main_script_with_postponed_annotations_and_a_dataclass_retries(
    project_dir: Path,
) -> None:
    script = write_script(project_dir, "point_script", DATACLASS_MAIN)
    (project_dir / "FAIL").touch()
    first = run_script(script)
    assert first.returncode == 0, first.stderr
    exec_id = first.stdout.strip().splitlines()[-1]
    (project_dir / "FAIL").unlink()

    KitaruClient().executions.retry(exec_id)
    execution = settle(exec_id)
    assert execution.status == ExecutionStatus.COMPLETED, execution.status_reason
    assert handle(exec_id).get() == 5
    assert effect_counts(project_dir) == {"coordinate": 2}
