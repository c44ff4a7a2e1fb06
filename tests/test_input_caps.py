"""Values accepted from outside (flow inputs, overrides) are capped: depth 64, 1 MiB."""

from __future__ import annotations

import pytest

from kitaru import checkpoint, flow
from kitaru.client import KitaruClient
from kitaru.errors import KitaruUsageError


@checkpoint
def echo(value: object) -> str:
    return "seen"


@flow
def pipeline(value: object = None) -> str:
    return echo(value)


def _nested(depth: int) -> list:
    value: list = []
    inner = value
    for _ in range(depth - 1):
        inner.append([])
        inner = inner[0]
    return value


@pytest.fixture
def source() -> str:
    return pipeline.run("x").exec_id


def test_replay_refuses_an_override_nested_deeper_than_64(source: str) -> None:
    client = KitaruClient()
    with pytest.raises(KitaruUsageError, match="nested deeper than 64"):
        client.executions.replay(source, from_="echo", overrides={"checkpoint.echo": _nested(65)})
    assert len(client.executions.list()) == 1  # nothing was created


def test_replay_refuses_a_flow_input_over_1_mib(source: str) -> None:
    client = KitaruClient()
    with pytest.raises(KitaruUsageError, match="1 MiB"):
        client.executions.replay(source, from_="echo", value="x" * (1024 * 1024 + 1))
    assert len(client.executions.list()) == 1


def test_replay_accepts_values_at_the_limits(source: str) -> None:
    client = KitaruClient()
    replayed = client.executions.replay(
        source, from_="echo", overrides={"checkpoint.echo": _nested(64)}
    )
    assert replayed.original_exec_id == source


def test_run_refuses_deep_args(project_dir) -> None:
    (project_dir / "capflows.py").write_text(
        "from kitaru import flow\n\n@flow\ndef take(value=None):\n    return 1\n"
    )
    with pytest.raises(KitaruUsageError, match="nested deeper than 64"):
        KitaruClient().executions.run("capflows.py:take", args={"value": _nested(65)})
