"""The client's read side: get / list / latest, filters, summaries, errors."""

from __future__ import annotations

from typing import Any

import pytest

import kitaru
from kitaru import (
    KitaruError,
    KitaruFeatureNotAvailableError,
    KitaruUsageError,
    checkpoint,
    flow,
)
from kitaru.client import ExecutionStatus, KitaruClient
from kitaru.errors import KitaruNotFoundError


@checkpoint
def step(x: int) -> int:
    kitaru.save(f"extra_{x}", x)
    return x


@checkpoint
def broken(x: int) -> int:
    raise ValueError("broken")


@flow
def alpha(n: int) -> int:
    return sum(step(i) for i in range(n))


@flow
def beta(fail: bool) -> int:
    if fail:
        return broken(1)
    return step(99)


@pytest.fixture
def runs() -> dict[str, Any]:
    """alpha(2), beta ok, alpha(3), beta failed, in that order (oldest first)."""
    return {
        "alpha1": alpha.run(2).exec_id,
        "beta_ok": beta.run(False).exec_id,
        "alpha2": alpha.run(3).exec_id,
        "beta_failed": beta.run(True).exec_id,
    }


def _ids(executions: list[Any]) -> list[str]:
    return [e.exec_id for e in executions]


def test_list_is_newest_first(runs: dict[str, Any]) -> None:
    client = KitaruClient()
    assert _ids(client.executions.list()) == [
        runs["beta_failed"],
        runs["alpha2"],
        runs["beta_ok"],
        runs["alpha1"],
    ]


def test_list_filters(runs: dict[str, Any]) -> None:
    executions = KitaruClient().executions
    assert _ids(executions.list(flow="alpha")) == [runs["alpha2"], runs["alpha1"]]
    assert _ids(executions.list(flow="beta", status="completed")) == [runs["beta_ok"]]
    assert _ids(executions.list(status=ExecutionStatus.FAILED)) == [runs["beta_failed"]]
    assert _ids(executions.list(status=" COMPLETED ")) == [
        runs["alpha2"],
        runs["beta_ok"],
        runs["alpha1"],
    ]
    assert _ids(executions.list(limit=2)) == [runs["beta_failed"], runs["alpha2"]]
    assert _ids(executions.list(flow="alpha", limit=1)) == [runs["alpha2"]]
    assert executions.list(flow="nosuchflow") == []
    assert executions.list(status="waiting") == []


def test_list_summaries_have_counts_but_no_detail(runs: dict[str, Any]) -> None:
    summaries = {e.exec_id: e for e in KitaruClient().executions.list()}
    a2 = summaries[runs["alpha2"]]
    assert a2.checkpoints == []
    assert a2.artifacts == []
    assert a2.checkpoint_count == 3
    assert a2.artifact_count == 6  # one output + one saved value per call
    assert a2.flow_name == "alpha"
    assert a2.status == ExecutionStatus.COMPLETED
    failed = summaries[runs["beta_failed"]]
    assert failed.checkpoint_count == 1
    assert failed.artifact_count == 0
    assert failed.status == ExecutionStatus.FAILED
    assert failed.failure is not None
    assert failed.failure.exception_type == "ValueError"
    full = KitaruClient().executions.get(runs["alpha2"])
    assert len(full.checkpoints) == full.checkpoint_count == 3
    assert len(full.artifacts) == full.artifact_count == 6


def test_latest(runs: dict[str, Any]) -> None:
    executions = KitaruClient().executions
    latest = executions.latest()
    assert latest.exec_id == runs["beta_failed"]
    assert latest.checkpoints  # latest returns the full execution
    assert executions.latest(flow="alpha").exec_id == runs["alpha2"]
    assert executions.latest(status="completed").exec_id == runs["alpha2"]
    assert executions.latest(flow="beta", status="completed").exec_id == runs["beta_ok"]
    with pytest.raises(LookupError, match="No executions found"):
        executions.latest(flow="nosuchflow")
    with pytest.raises(LookupError, match="No executions found"):
        executions.latest(status="cancelled")


def test_bad_limit_and_status(runs: dict[str, Any]) -> None:
    executions = KitaruClient().executions
    for bad in (0, -1):
        with pytest.raises(KitaruUsageError, match=r"^`limit` must be >= 1 when provided\.$"):
            executions.list(limit=bad)
    with pytest.raises(KitaruUsageError, match="Unsupported status filter"):
        executions.list(status="bogus")
    with pytest.raises(KitaruUsageError, match="Unsupported status filter"):
        executions.latest(status="bogus")
    with pytest.raises(KitaruUsageError, match="Unsupported status filter"):
        executions.list(status="")


def test_no_store_at_all() -> None:
    client = KitaruClient()
    assert client.executions.list() == []
    assert client.executions.list(flow="x", status="failed", limit=3) == []
    with pytest.raises(LookupError, match="No executions found"):
        client.executions.latest()
    with pytest.raises(KitaruError, match="No Kitaru project found"):
        client.executions.get("kr-x")
    # the validation still applies without a store
    with pytest.raises(KitaruUsageError):
        client.executions.list(limit=0)


def test_client_made_before_the_first_run_sees_it() -> None:
    client = KitaruClient()
    assert client.executions.list() == []
    exec_id = alpha.run(1).exec_id
    assert _ids(client.executions.list()) == [exec_id]


def test_unknown_id_and_prefixes(runs: dict[str, Any]) -> None:
    executions = KitaruClient().executions
    with pytest.raises(KitaruNotFoundError, match="kr-zzzzzzzz"):
        executions.get("kr-zzzzzzzz")
    with pytest.raises(KitaruUsageError):
        executions.get("../x")
    full = runs["beta_failed"]
    # ids share a time prefix; the whole id without its last char is still unique here
    assert executions.get(full[:-1]).exec_id == full
    assert executions.get(full.removeprefix("kr-")).exec_id == full
    with pytest.raises(KitaruUsageError, match="ambiguous"):
        executions.get("kr-")


def test_get_details(runs: dict[str, Any]) -> None:
    execution = KitaruClient().executions.get(runs["alpha1"])
    assert execution.flow_name == "alpha"
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.started_at is not None and execution.ended_at is not None
    assert execution.ended_at >= execution.started_at
    assert execution.stack_name == "local"
    assert execution.failure is None
    assert execution.status_reason is None
    assert [c.invocation_id for c in execution.checkpoints] == ["step", "step_2"]
    assert [c.status for c in execution.checkpoints] == ["completed", "completed"]
    for call in execution.checkpoints:
        assert call.call_id.startswith(runs["alpha1"])
        assert call.attempts and call.attempts[-1].status == "completed"


def test_snapshots_refresh_and_copies(runs: dict[str, Any]) -> None:
    execution = KitaruClient().executions.get(runs["alpha2"])
    again = execution.refresh()
    assert again is not execution
    assert again == execution
    checkpoints = execution.list_checkpoints()
    assert checkpoints == execution.checkpoints
    checkpoints.clear()
    assert len(execution.checkpoints) == 3
    artifacts = execution.list_artifacts()
    assert artifacts == execution.artifacts
    artifacts.append(artifacts[0])
    assert len(execution.artifacts) == 6


def test_execution_from_a_list_summary_can_refresh(runs: dict[str, Any]) -> None:
    summary = KitaruClient().executions.list(flow="beta", status="completed")[0]
    full = summary.refresh()
    assert full.exec_id == runs["beta_ok"]
    assert [c.invocation_id for c in full.checkpoints] == ["step"]


@pytest.mark.parametrize("kwargs", [{"server_url": "x"}, {"auth_token": "t"}, {"project": "p"}])
def test_connection_overrides_are_not_available(kwargs: dict[str, str]) -> None:
    with pytest.raises(KitaruFeatureNotAvailableError, match="Per-client connection overrides"):
        KitaruClient(**kwargs)
