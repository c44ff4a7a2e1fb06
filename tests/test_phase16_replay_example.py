"""The seed page's replay example works as written."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples/replay/replay_with_overrides.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("replay_with_overrides", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_replay_example_uses_the_override() -> None:
    before, after = _load_example().run_workflow(topic="kitaru")
    assert before == "PUBLISHED: Draft from notes about kitaru"
    assert after == "PUBLISHED: Draft from edited notes for kitaru"
