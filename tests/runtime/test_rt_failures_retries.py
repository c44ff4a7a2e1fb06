"""Failed executions, their typed errors and failure records; checkpoint retries."""

from __future__ import annotations

from typing import Any

import pytest

from kitaru import (
    FailureOrigin,
    KitaruExecutionError,
    KitaruUsageError,
    KitaruUserCodeError,
    checkpoint,
    flow,
)
from kitaru.client import ExecutionStatus, KitaruClient

# -- 2. failures ------------------------------------------------------------------------------


def _failing_flow() -> Any:
    @checkpoint
    def ok() -> int:
        return 1

    @checkpoint
    def boom(x: int) -> int:
        raise ValueError(f"bad input {x}")

    @flow
    def doomed() -> int:
        return boom(ok())

    return doomed


def test_failing_checkpoint_is_recorded_as_a_user_code_failure() -> None:
    handle = _failing_flow().run()
    assert handle.status == ExecutionStatus.FAILED

    execution = KitaruClient().executions.get(handle.exec_id)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.failure is not None
    assert execution.failure.exception_type == "ValueError"
    assert execution.failure.origin == FailureOrigin.USER_CODE
    assert "bad input 1" in execution.failure.message
    assert execution.failure.traceback and "ValueError" in execution.failure.traceback
    by_inv = {c.invocation_id: c for c in execution.checkpoints}
    assert by_inv["ok"].status == "completed"
    assert by_inv["boom"].status == "failed"
    assert by_inv["boom"].failure is not None
    assert by_inv["boom"].failure.exception_type == "ValueError"
    assert by_inv["boom"].failure.origin == FailureOrigin.USER_CODE
    assert by_inv["boom"].ended_at is not None


def test_failed_execution_wait_raises_user_code_error_with_retry_hint() -> None:
    handle = _failing_flow().run()
    with pytest.raises(KitaruUserCodeError) as info:
        handle.wait()
    err = info.value
    assert isinstance(err, KitaruExecutionError)
    assert str(err).endswith(f"kitaru executions retry {handle.exec_id}")
    assert "bad input 1" in str(err)
    assert err.exec_id == handle.exec_id


def test_failed_execution_get_raises_user_code_error() -> None:
    handle = _failing_flow().run()
    with pytest.raises(KitaruUserCodeError, match="kitaru executions retry"):
        handle.get()


def test_failure_in_the_flow_body_fails_the_flow() -> None:
    @flow
    def body_fails() -> None:
        raise KeyError("missing")

    handle = body_fails.run()
    assert handle.status == ExecutionStatus.FAILED
    failure = KitaruClient().executions.get(handle.exec_id).failure
    assert failure is not None
    assert failure.exception_type == "KeyError"


def test_unstorable_flow_result_fails_the_execution() -> None:
    @flow
    def gives_lambda() -> Any:
        return lambda: 1

    handle = gives_lambda.run()
    assert handle.status == ExecutionStatus.FAILED
    failure = KitaruClient().executions.get(handle.exec_id).failure
    assert failure is not None
    assert "serialize" in failure.message.lower()


# -- 3. retries -------------------------------------------------------------------------------


def _attempt_summary(exec_id: str, inv: str) -> tuple[str, list[tuple[str, str | None]]]:
    call = next(
        c for c in KitaruClient().executions.get(exec_id).checkpoints if c.invocation_id == inv
    )
    return call.status, [
        (a.status, a.failure.exception_type if a.failure else None) for a in call.attempts
    ]


def test_checkpoint_retries_until_success() -> None:
    tries: list[int] = []

    @checkpoint(retries=2)
    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError(f"try {len(tries)}")
        return "finally"

    @flow
    def retrying() -> str:
        return flaky()

    handle = retrying.run()
    assert handle.wait() == "finally"
    assert len(tries) == 3
    status, attempts = _attempt_summary(handle.exec_id, "flaky")
    assert status == "completed"
    assert attempts == [
        ("failed", "ConnectionError"),
        ("failed", "ConnectionError"),
        ("completed", None),
    ]
    call = KitaruClient().executions.get(handle.exec_id).checkpoints[0]
    assert call.attempts[0].failure is not None
    assert call.attempts[0].failure.message == "try 1"
    assert call.attempts[1].failure is not None
    assert call.attempts[1].failure.message == "try 2"
    assert len({a.attempt_id for a in call.attempts}) == 3


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_always_failing_checkpoint_records_every_attempt(retries: int) -> None:
    tries: list[int] = []

    @checkpoint(retries=retries)
    def never() -> None:
        tries.append(1)
        raise RuntimeError("nope")

    @flow
    def hopeless() -> None:
        never()

    handle = hopeless.run()
    assert handle.status == ExecutionStatus.FAILED
    with pytest.raises(KitaruUserCodeError, match="nope"):
        handle.wait()
    assert len(tries) == retries + 1
    status, attempts = _attempt_summary(handle.exec_id, "never")
    assert status == "failed"
    assert attempts == [("failed", "RuntimeError")] * (retries + 1)


def test_flow_retries_is_the_default_for_checkpoints() -> None:
    counts = {"plain": 0, "own": 0}

    @checkpoint
    def plain() -> None:
        counts["plain"] += 1
        raise ValueError("plain")

    @checkpoint(retries=0)
    def own() -> None:
        counts["own"] += 1
        raise ValueError("own")

    @flow(retries=2)
    def defaults() -> None:
        try:
            own()
        except ValueError:
            pass
        plain()

    handle = defaults.run()
    assert handle.status == ExecutionStatus.FAILED
    assert counts == {"plain": 3, "own": 1}
    assert len(_attempt_summary(handle.exec_id, "plain")[1]) == 3
    assert len(_attempt_summary(handle.exec_id, "own")[1]) == 1


def test_run_retries_argument_overrides_the_flow_default() -> None:
    count = [0]

    @checkpoint
    def fails() -> None:
        count[0] += 1
        raise ValueError("x")

    @flow(retries=3)
    def f() -> None:
        fails()

    f.run(retries=1)
    assert count[0] == 2


def test_kitaru_retries_env_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_RETRIES", "2")
    count = [0]

    @checkpoint
    def fails() -> None:
        count[0] += 1
        raise ValueError("x")

    @flow
    def f() -> None:
        fails()

    handle = f.run()
    assert handle.status == ExecutionStatus.FAILED
    assert count[0] == 3


@pytest.mark.parametrize("bad", [-1, "x", 1.5, True])
def test_invalid_checkpoint_retries(bad: Any) -> None:
    with pytest.raises(KitaruUsageError):

        @checkpoint(retries=bad)
        def cp() -> None:
            return None


@pytest.mark.parametrize("bad", [-1, "x", 1.5, True])
def test_invalid_flow_retries(bad: Any) -> None:
    with pytest.raises(KitaruUsageError):

        @flow(retries=bad)
        def f() -> None:
            return None


@pytest.mark.parametrize("bad", [-1, "x"])
def test_invalid_run_retries(bad: Any) -> None:
    @flow
    def f() -> None:
        return None

    with pytest.raises(KitaruUsageError):
        f.run(retries=bad)


@pytest.mark.parametrize("bad", ["-1", "x", "1.5", "two", "\u00b2", "\uff12"])
def test_invalid_retries_env(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("KITARU_RETRIES", bad)

    @flow
    def f() -> None:
        return None

    with pytest.raises(KitaruUsageError):
        f.run()
