"""A client polling for waits while the first ``flow.run()`` creates the store."""

from __future__ import annotations

import threading

import wait_flows as wf

from kitaru.client import KitaruClient


def test_client_reading_while_the_first_run_creates_the_store(project_dir, monkeypatch) -> None:
    errors: list[BaseException] = []
    for attempt in range(5):
        folder = project_dir / f"p{attempt}"
        folder.mkdir()
        monkeypatch.chdir(folder)
        stop = threading.Event()

        def poll(stop: threading.Event = stop) -> None:
            client = KitaruClient()
            while not stop.is_set():
                try:
                    client.executions.list(status="waiting")
                except BaseException as exc:  # the bug
                    errors.append(exc)
                    return

        reader = threading.Thread(target=poll)
        reader.start()
        try:
            handle = wf.gate_flow.run("bool", 0)
        finally:
            stop.set()
            reader.join(10)
        KitaruClient().executions.abort_wait(handle.exec_id, wait="approve")
        if errors:
            break
    assert errors == []
