"""Replay: checks and messages, reuse before the boundary, overrides, flow inputs, waits."""

from __future__ import annotations

import pytest
import wait_flows as wf
from wait_helpers import (
    Background,
    call_records,
    settle,
    wait_for_pending,
    wait_record,
    wait_until,
)

from kitaru.errors import KitaruStateError, KitaruUsageError
from kitaru.models import ExecutionStatus

RESULT = "PUBLISHED: Draft from notes about t | Draft from notes about t again | plain"


@pytest.fixture
def source(client) -> str:
    handle = wf.pipeline.run("t")
    assert handle.wait() == RESULT
    assert wf.effects() == ["fetch", "draft", "draft", "publish"]
    return handle.exec_id


# -- checks and messages ---------------------------------------------------------------------


def test_replay_of_a_running_source_is_refused(client) -> None:
    wf.BLOCK.clear()
    wf.BLOCKED.clear()
    run = Background(lambda: wf.blocking_flow.run())
    try:
        assert wf.BLOCKED.wait(20)
        exec_id = wait_until(lambda: [e.exec_id for e in client.executions.list()])[0]
        with pytest.raises(KitaruStateError) as info:
            client.executions.replay(exec_id, from_="fetch")
        assert str(info.value).startswith("Replay requires a non-running source execution")
        with pytest.raises(KitaruStateError):
            wf.blocking_flow.replay(exec_id, from_="fetch")
    finally:
        wf.BLOCK.set()
    assert run.join()["result"] == "notes about xunblocked"


def test_replay_without_checkpoints_is_refused(client) -> None:
    handle = wf.only_wait_flow.run()
    assert handle.status == ExecutionStatus.WAITING
    with pytest.raises(KitaruStateError) as info:
        client.executions.replay(handle.exec_id, from_="approve")
    assert str(info.value) == (f"Execution '{handle.exec_id}' has no checkpoint history to replay.")


@pytest.mark.parametrize("blank", ["", "  ", None])
def test_blank_from_is_a_usage_error(client, source, blank) -> None:
    with pytest.raises(KitaruUsageError):
        client.executions.replay(source, from_=blank)


def test_unknown_selector_lists_the_checkpoints(client, source) -> None:
    with pytest.raises(KitaruStateError) as info:
        client.executions.replay(source, from_="x")
    message = str(info.value)
    assert message.startswith("Unknown checkpoint selector 'x'. Available checkpoints: ")
    for name in ("fetch", "draft", "draft_2", "publish"):
        assert name in message
    with pytest.raises(KitaruStateError) as info:
        client.executions.replay(source, from_="publish", overrides={"checkpoint.nope": 1})
    assert "Unknown checkpoint selector 'nope'" in str(info.value)


def test_name_called_twice_is_ambiguous_but_its_ids_are_not(client, source) -> None:
    with pytest.raises(KitaruStateError) as info:
        client.executions.replay(source, from_="draft")
    assert "ambiguous" in str(info.value)
    assert "call ID" in str(info.value)
    with pytest.raises(KitaruStateError) as info:
        client.executions.replay(source, from_="publish", overrides={"checkpoint.draft": "x"})
    assert "ambiguous" in str(info.value)
    by_inv = wf.pipeline.replay(source, from_="draft_2")
    assert by_inv.wait() == RESULT
    assert wf.effects()[4:] == ["draft", "publish"]
    call_id = next(c["call_id"] for c in call_records(source) if c["invocation_id"] == "draft_2")
    by_call = wf.pipeline.replay(source, from_=call_id)
    assert by_call.wait() == RESULT
    assert wf.effects()[6:] == ["draft", "publish"]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"draft_2": "x"}, "Override keys must start with `checkpoint.`"),
        ({"step.draft_2": "x"}, "Override keys must start with `checkpoint.`"),
        ({"wait.approve": True}, "Wait overrides"),
        ({"checkpoint.": "x"}, "checkpoint."),
        ({"checkpoint.  ": "x"}, "checkpoint."),
        ({1: "x"}, "Override keys must start with `checkpoint.`"),
    ],
)
def test_bad_override_keys_are_usage_errors(client, source, overrides, needle) -> None:
    with pytest.raises(KitaruUsageError) as info:
        client.executions.replay(source, from_="publish", overrides=overrides)
    assert needle in str(info.value)
    with pytest.raises(KitaruUsageError):
        wf.pipeline.replay(source, from_="publish", overrides=overrides)


def test_failed_checks_create_no_execution(client, source) -> None:
    for bad in ({"from_": "x"}, {"from_": "publish", "overrides": {"wait.a": 1}}):
        with pytest.raises((KitaruStateError, KitaruUsageError)):
            client.executions.replay(source, **bad)
    assert [e.exec_id for e in client.executions.list()] == [source]


# -- reuse, re-run, overrides ------------------------------------------------------------------


def test_calls_before_the_boundary_are_reused_and_the_rest_rerun_despite_cache(
    client, source
) -> None:
    handle = wf.pipeline.replay(source, from_="publish", cache=True)
    assert handle.wait() == RESULT
    # publish has the same inputs (the cache would hit) but runs again at the boundary.
    assert wf.effects() == ["fetch", "draft", "draft", "publish", "publish"]
    source_calls = {c["invocation_id"]: c for c in call_records(source)}
    calls = call_records(handle.exec_id)
    assert [c["invocation_id"] for c in calls] == ["fetch", "draft", "draft_2", "publish"]
    for call in calls[:3]:
        assert call["original_call_id"] == source_calls[call["invocation_id"]]["call_id"]
        assert call["call_id"].startswith(handle.exec_id)
    assert calls[3]["original_call_id"] is None
    assert calls[3]["cached_from"] is None
    execution = client.executions.get(handle.exec_id)
    assert execution.original_exec_id == source
    assert [c.original_call_id is not None for c in execution.checkpoints] == [
        True,
        True,
        True,
        False,
    ]


def test_replay_from_the_first_checkpoint_reruns_everything(client, source) -> None:
    handle = wf.pipeline.replay(source, from_="fetch")
    assert handle.wait() == RESULT
    assert wf.effects()[4:] == ["fetch", "draft", "draft", "publish"]
    assert all(c["original_call_id"] is None for c in call_records(handle.exec_id))


def test_override_is_recorded_and_downstream_reruns(client, source) -> None:
    handle = wf.pipeline.replay(source, from_="publish", overrides={"checkpoint.draft_2": "EDITED"})
    assert handle.wait() == ("PUBLISHED: Draft from notes about t | EDITED | plain")
    assert wf.effects()[4:] == ["publish"]
    calls = {c["invocation_id"]: c for c in call_records(handle.exec_id)}
    overridden = calls["draft_2"]
    assert overridden["status"] == "completed"
    assert overridden["metadata"]["override"] is True
    source_calls = {c["invocation_id"]: c for c in call_records(source)}
    assert overridden["original_call_id"] == source_calls["draft_2"]["call_id"]
    execution = client.executions.get(handle.exec_id)
    cp = next(c for c in execution.checkpoints if c.invocation_id == "draft_2")
    assert cp.metadata["override"] is True
    assert cp.artifacts[0].load() == "EDITED"
    assert calls["fetch"]["original_call_id"] is not None
    assert calls["draft"]["original_call_id"] is not None


def test_override_before_from_moves_the_boundary(client, source) -> None:
    handle = wf.pipeline.replay(source, from_="publish", overrides={"checkpoint.fetch": "N"})
    assert handle.wait() == "PUBLISHED: Draft from N | Draft from N again | plain"
    assert wf.effects()[4:] == ["draft", "draft", "publish"]


# -- flow inputs -----------------------------------------------------------------------------------


def test_flow_inputs_replace_positional_and_keyword_parameters(client) -> None:
    first = wf.pipeline.run("t", style="bold")
    first.wait()
    by_position = wf.pipeline.replay(first.exec_id, from_="fetch", topic="u")
    assert by_position.wait() == (
        "PUBLISHED: Draft from notes about u | Draft from notes about u again | bold"
    )
    by_keyword = wf.pipeline.replay(first.exec_id, from_="publish", style="italic")
    assert by_keyword.wait() == (
        "PUBLISHED: Draft from notes about t | Draft from notes about t again | italic"
    )
    second = wf.pipeline.run(topic="v")
    second.wait()
    keyword_given = wf.pipeline.replay(second.exec_id, from_="fetch", topic="w", style="s")
    assert keyword_given.wait() == (
        "PUBLISHED: Draft from notes about w | Draft from notes about w again | s"
    )


def test_unknown_flow_input_is_a_usage_error(client, source) -> None:
    with pytest.raises(KitaruUsageError) as info:
        wf.pipeline.replay(source, from_="publish", nope=1)
    assert "nope" in str(info.value)
    with pytest.raises(KitaruUsageError):
        client.executions.replay(source, from_="publish", nope=1)


def test_flow_input_for_an_unpassed_positional_only_parameter(client) -> None:
    first = wf.posonly_pipeline.run("x")
    assert first.wait() == "PUBLISHED: notes about xB"
    replay = wf.posonly_pipeline.replay(first.exec_id, from_="publish", b="C")
    assert replay.wait() == "PUBLISHED: notes about xC"


# -- waits in replays, sources of every status ----------------------------------------------------


def test_wait_in_a_replay_is_new_and_pending(client) -> None:
    first = wf.approval_pipeline.run("t")
    client.executions.input(first.exec_id, wait="approve", value=True)
    client.executions.resume(first.exec_id)
    assert first.wait(timeout=30) == "PUBLISHED: notes about t approved=True"
    replay = wf.approval_pipeline.replay(first.exec_id, from_="publish")
    assert replay.status == ExecutionStatus.WAITING
    assert wf.effects() == ["fetch", "publish"]  # fetch reused, not run
    pending = client.executions.pending_waits(replay.exec_id)
    assert [w.name for w in pending] == ["approve"]
    assert wait_record(replay.exec_id, 2)["status"] == "pending"
    client.executions.input(replay.exec_id, wait="approve", value=False)
    client.executions.resume(replay.exec_id)
    assert replay.wait(timeout=30) == "PUBLISHED: notes about t approved=False"
    assert wait_record(first.exec_id, 2)["value"] is True


def test_replay_from_a_waiting_source(client) -> None:
    first = wf.approval_pipeline.run("t")
    assert first.status == ExecutionStatus.WAITING
    replay = wf.approval_pipeline.replay(first.exec_id, from_="fetch", topic="u", timeout=0)
    assert replay.status == ExecutionStatus.WAITING
    assert client.executions.get(first.exec_id).status == ExecutionStatus.WAITING
    client.executions.abort_wait(replay.exec_id, wait="approve")
    client.executions.abort_wait(first.exec_id, wait="approve")


def test_replay_from_a_waiting_source_answered_in_time(client) -> None:
    first = wf.approval_pipeline.run("t")
    run = Background(lambda: wf.approval_pipeline.replay(first.exec_id, from_="fetch", timeout=30))
    replay_id, _ = wait_for_pending(client, "approve", known={first.exec_id})
    client.executions.input(replay_id, wait="approve", value=True)
    outcome = run.join()
    assert outcome["result"] == "PUBLISHED: notes about t approved=True"
    assert client.executions.get(replay_id).original_exec_id == first.exec_id
    client.executions.abort_wait(first.exec_id, wait="approve")


def test_replay_from_a_failed_source_with_new_inputs(client) -> None:
    first = wf.failing_pipeline.run("t")
    assert first.status == ExecutionStatus.FAILED
    replay = wf.failing_pipeline.replay(first.exec_id, from_="check", fail=False)
    assert replay.wait() == "notes about t / checked"
    assert wf.effects() == ["fetch", "check", "check"]


def test_client_replay_through_the_detached_runner(client, source) -> None:
    execution = client.executions.replay(
        source, from_="publish", overrides={"checkpoint.draft_2": "D2"}, style="x"
    )
    assert execution.original_exec_id == source
    assert execution.exec_id != source
    final = settle(client, execution.exec_id)
    assert final.status == ExecutionStatus.COMPLETED, final.failure
    from kitaru.runtime.flow import FlowHandle
    from kitaru.store import Store

    handle = FlowHandle(execution.exec_id, Store.open().root)
    assert handle.wait() == "PUBLISHED: Draft from notes about t | D2 | x"
    assert wf.effects()[4:] == ["publish"]


def test_override_applies_by_invocation_id_when_the_body_branches(client) -> None:
    """A changed input after the boundary may add calls; overrides still find their call."""
    source = wf.branching_pipeline.run("plain").exec_id
    replay = wf.branching_pipeline.replay(
        source, from_="fetch", overrides={"checkpoint.publish": "OVERRIDDEN"}, topic="extra"
    )
    assert replay.wait() == "OVERRIDDEN"
    execution = client.executions.get(replay.exec_id)
    names = [cp.invocation_id for cp in execution.checkpoints]
    assert names == ["fetch", "bonus", "write", "publish"]
    publish = execution.checkpoints[-1]
    assert publish.metadata == {"override": True}
    assert publish.original_call_id == client.executions.get(source).checkpoints[-1].call_id
