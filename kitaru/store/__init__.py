"""The only code that touches `.kitaru/` on disk."""

from kitaru.store.store import FORMAT, RUNNER_EXITED, Store, now_iso

__all__ = ["FORMAT", "RUNNER_EXITED", "Store", "now_iso"]
