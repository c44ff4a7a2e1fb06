"""Status and flow index: empty marker files, like git refs, for listing without a full scan.

``index/status/<status>/<exec_id>`` and ``index/flow/<flow>/<exec_id>``; a marker is another
name (a hard link) of the execution's empty ``runner.lock`` where it can be, so making one
allocates nothing. Markers are derived
data: readers confirm each hit against ``state.json``, and ``kitaru doctor --fix`` rebuilds them.
A status change adds the new marker before the state is written and removes the old one after,
so a crash in between leaves an extra marker (a warning), never a missing one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kitaru.store.atomic import create_marker, ensure_dir

__all__ = ["Index"]


class Index:
    """The ``index/`` folder of one store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._base = str(root)  # folders are joined as strings: every run makes and moves markers

    def status_dir(self, status: str) -> str:
        """Folder holding the markers of ``status``."""
        return f"{self._base}/status/{status}"

    def flow_dir(self, flow: str) -> str:
        """Folder holding the markers of flow ``flow``."""
        return f"{self._base}/flow/{flow}"

    def add(
        self,
        folder: Path | str,
        exec_id: str,
        *,
        durable: bool = False,
        same_as: Path | str | None = None,
    ) -> None:
        """Create a marker; ``durable`` when a record about to be fsynced depends on it.

        ``same_as`` is an empty file the marker may be another name of (see ``create_marker``).
        """
        ensure_dir(folder, durable=durable)
        create_marker(f"{folder}/{exec_id}", durable=durable, same_as=same_as)

    def remove(self, folder: Path | str, exec_id: str) -> None:
        """Remove a marker if present."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{folder}/{exec_id}")

    def ids(self, folder: Path | str) -> list[str]:
        """Execution ids marked in ``folder``, newest first."""
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        return sorted((n for n in names if n.startswith("kr-")), reverse=True)

    def all_markers(self) -> list[tuple[str, str, str]]:
        """Every marker as ``(kind, value, exec_id)``."""
        out = []
        for kind in ("status", "flow"):
            base = self.root / kind
            if not base.is_dir():
                continue
            for value in sorted(os.listdir(base)):
                for exec_id in self.ids(base / value):
                    out.append((kind, value, exec_id))
        return out
