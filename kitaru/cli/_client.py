"""The CLI's one way to get a ``KitaruClient`` (imported lazily, so ``--help`` stays fast)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kitaru.client import KitaruClient

__all__ = ["get_client"]


def get_client() -> KitaruClient:
    """Return a client for the project chosen by ``--project``, the environment or the cwd."""
    from kitaru.client import KitaruClient

    return KitaruClient()
