"""Fixtures for the store tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitaru.store import Store


@pytest.fixture
def store(project_dir: Path) -> Store:
    """A fresh store in this test's project folder."""
    return Store.init(project_dir)
