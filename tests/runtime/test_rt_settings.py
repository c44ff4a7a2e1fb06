"""Settings precedence: defaults < pyproject < environment < configure < @flow < .run()."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import spec

import kitaru
from kitaru import KitaruUsageError, flow
from kitaru.client import KitaruClient
from kitaru.runtime import settings
from kitaru.runtime.settings import resolve_settings


def _resolved(handle: Any) -> dict[str, Any]:
    """The settings recorded for a run, checked to agree between the file and the client."""
    from_file = spec(handle.exec_id)["settings"]
    frozen = KitaruClient().executions.get(handle.exec_id).frozen_execution_spec
    assert frozen is not None
    resolved = frozen["resolved_execution"]
    assert {k: from_file[k] for k in ("stack", "cache", "retries")} == {
        k: resolved[k] for k in ("stack", "cache", "retries")
    }
    return {k: resolved[k] for k in ("cache", "retries", "stack")}


def _flow(**options: Any) -> Any:
    @flow(**options)
    def configured() -> str:
        return "ok"

    return configured


def _pyproject(project: Path, body: str) -> None:
    (project / "pyproject.toml").write_text(f"[project]\nname = 'demo'\n\n[tool.kitaru]\n{body}\n")


def test_defaults() -> None:
    handle = _flow().run()
    assert _resolved(handle) == {"cache": True, "retries": 0, "stack": "local"}


def test_pyproject_beats_defaults(project_dir: Path) -> None:
    _pyproject(project_dir, "cache = false\nretries = 3")
    assert _resolved(_flow().run()) == {"cache": False, "retries": 3, "stack": "local"}


def test_pyproject_in_a_parent_folder_applies(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pyproject(project_dir, "retries = 4")
    sub = project_dir / "src" / "pkg"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert _resolved(_flow().run())["retries"] == 4


def test_env_beats_pyproject(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pyproject(project_dir, "cache = true\nretries = 3")
    monkeypatch.setenv("KITARU_CACHE", "0")
    monkeypatch.setenv("KITARU_RETRIES", "2")
    assert _resolved(_flow().run()) == {"cache": False, "retries": 2, "stack": "local"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("off", False),
        ("n", False),
        ("False", False),
    ],
)
def test_env_cache_spellings(monkeypatch: pytest.MonkeyPatch, text: str, value: bool) -> None:
    monkeypatch.setenv("KITARU_CACHE", text)
    assert _resolved(_flow().run())["cache"] is value


def test_configure_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_CACHE", "0")
    monkeypatch.setenv("KITARU_RETRIES", "2")
    layer = kitaru.configure(cache=True, retries=5)
    assert (layer.cache, layer.retries) == (True, 5)
    assert _resolved(_flow().run()) == {"cache": True, "retries": 5, "stack": "local"}


def test_configure_only_changes_what_is_given_and_none_clears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KITARU_RETRIES", "2")
    kitaru.configure(retries=5, cache=False)
    layer = kitaru.configure(cache=True)
    assert (layer.cache, layer.retries) == (True, 5)
    layer = kitaru.configure(retries=None)
    assert layer.retries is None
    assert _resolved(_flow().run()) == {"cache": True, "retries": 2, "stack": "local"}


def test_flow_decorator_beats_configure() -> None:
    kitaru.configure(cache=True, retries=5)
    assert _resolved(_flow(cache=False, retries=1).run()) == {
        "cache": False,
        "retries": 1,
        "stack": "local",
    }


def test_run_arguments_beat_the_decorator(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pyproject(project_dir, "cache = true\nretries = 9")
    monkeypatch.setenv("KITARU_RETRIES", "8")
    kitaru.configure(retries=7)
    handle = _flow(cache=True, retries=1).run(cache=False, retries=6, stack="local")
    assert _resolved(handle) == {"cache": False, "retries": 6, "stack": "local"}
    assert handle.wait() == "ok"


def test_flow_defaults_are_recorded() -> None:
    handle = _flow(retries=2).run()
    frozen = KitaruClient().executions.get(handle.exec_id).frozen_execution_spec
    assert frozen is not None
    assert frozen["flow_defaults"] == {"retries": 2}
    assert spec(handle.exec_id)["flow_defaults"] == {"retries": 2}


def test_settings_are_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    f = _flow()
    first = f.run(retries=3)
    monkeypatch.setenv("KITARU_CACHE", "false")
    second = f.run()
    assert _resolved(first) == {"cache": True, "retries": 3, "stack": "local"}
    assert _resolved(second) == {"cache": False, "retries": 0, "stack": "local"}


@pytest.mark.parametrize("name", ["other", "remote", "LOCAL2"])
def test_unknown_stack_from_env(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("KITARU_STACK", name)
    with pytest.raises(KitaruUsageError, match=name):
        _flow().run()
    assert not (Path.cwd() / ".kitaru").exists()


def test_local_stack_from_env_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_STACK", "local")
    assert _resolved(_flow().run())["stack"] == "local"


def test_unknown_stack_elsewhere() -> None:
    with pytest.raises(KitaruUsageError):
        _flow(stack="other")
    with pytest.raises(KitaruUsageError):
        kitaru.configure(stack="other")
    with pytest.raises(KitaruUsageError):
        _flow().run(stack="other")


def test_unknown_stack_in_pyproject(project_dir: Path) -> None:
    _pyproject(project_dir, 'stack = "other"')
    with pytest.raises(KitaruUsageError):
        _flow().run()


@pytest.mark.parametrize("bad", ["maybe", "2", "yess", "-"])
def test_invalid_env_cache(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("KITARU_CACHE", bad)
    with pytest.raises(KitaruUsageError):
        _flow().run()


@pytest.mark.parametrize(
    "body", ['cache = "yes"', "retries = -1", 'retries = "2"', "retries = 1.5", "cache = 1"]
)
def test_invalid_pyproject_values(project_dir: Path, body: str) -> None:
    _pyproject(project_dir, body)
    with pytest.raises(KitaruUsageError):
        _flow().run()


def test_unreadable_pyproject_is_a_usage_error(project_dir: Path) -> None:
    (project_dir / "pyproject.toml").write_text("[tool.kitaru\nbroken")
    with pytest.raises(KitaruUsageError):
        _flow().run()


@pytest.mark.parametrize(
    ("key", "bad"), [("cache", "yes"), ("cache", 1), ("retries", -1), ("retries", "3")]
)
def test_invalid_configure_values(key: str, bad: Any) -> None:
    with pytest.raises(KitaruUsageError):
        kitaru.configure(**{key: bad})
    # nothing was stored by the failed call
    assert getattr(kitaru.configure(), key) is None


def test_invalid_cache_in_decorator_and_run() -> None:
    with pytest.raises(KitaruUsageError):
        _flow(cache="no")
    with pytest.raises(KitaruUsageError):
        _flow().run(cache="no")


def test_an_edited_pyproject_applies_to_the_next_run(project_dir: Path) -> None:
    _pyproject(project_dir, "retries = 1")
    assert resolve_settings({}, {})["retries"] == 1
    _pyproject(project_dir, "retries = 2")  # the same size, likely in the same clock tick
    assert resolve_settings({}, {})["retries"] == 2
    _pyproject(project_dir, "retries = 30")
    assert resolve_settings({}, {})["retries"] == 30
    (project_dir / "pyproject.toml").unlink()
    assert resolve_settings({}, {})["retries"] == 0


def test_an_unchanged_pyproject_is_parsed_once(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pyproject(project_dir, "retries = 5")
    path = project_dir / "pyproject.toml"
    # As if it was last edited long ago (its mtime and ctime are seconds old by now).
    monkeypatch.setattr(settings, "_RACY_SECONDS", -1.0)
    parsed: list[str] = []
    real = settings._read_pyproject
    monkeypatch.setattr(settings, "_read_pyproject", lambda p: parsed.append(p) or real(p))
    assert [resolve_settings({}, {})["retries"] for _ in range(3)] == [5, 5, 5]
    assert parsed == [str(path)]
    old = path.stat().st_mtime_ns
    path.write_text(path.read_text().replace("retries = 5", "retries = 6"))
    os.utime(path, ns=(old, old))  # the same size and mtime: the inode change time tells
    assert resolve_settings({}, {})["retries"] == 6
    assert len(parsed) == 2


def test_a_pyproject_layer_is_a_copy_each_time(project_dir: Path) -> None:
    _pyproject(project_dir, 'image = { base_image = "python:3.12" }')
    first = resolve_settings({}, {})
    first["image"]["base_image"] = "changed by the caller"
    assert resolve_settings({}, {})["image"] == {"base_image": "python:3.12"}
