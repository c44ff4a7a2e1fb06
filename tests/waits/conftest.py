"""Fixtures for the wait tests: a clean ``kitaru.configure`` layer and a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import kitaru
from kitaru.client import KitaruClient


@pytest.fixture(autouse=True)
def reset_configure() -> Iterator[None]:
    kitaru.configure(cache=None, retries=None, stack=None, image=None)
    yield
    kitaru.configure(cache=None, retries=None, stack=None, image=None)


@pytest.fixture
def client() -> KitaruClient:
    return KitaruClient()
