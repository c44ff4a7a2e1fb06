"""Fixtures for the cache and log-capture tests: a clean ``kitaru.configure`` layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import kitaru


@pytest.fixture(autouse=True)
def reset_configure() -> Iterator[None]:
    """Clear whatever ``kitaru.configure(...)`` set, before and after each test."""
    kitaru.configure(cache=None, retries=None, stack=None, image=None)
    yield
    kitaru.configure(cache=None, retries=None, stack=None, image=None)
