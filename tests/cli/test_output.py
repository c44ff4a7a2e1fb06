"""The renderer and the one error point: escaping, times, JSON, colour, unexpected errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cli_helpers import Invoke, make_execution, parse

from kitaru.cli import output
from kitaru.store import Store


def test_escape_control_characters() -> None:
    assert output.escape("a\x1b[31mb") == "a\\x1b[31mb"
    assert output.escape("one\ntwo\tthree\r") == "one\\ntwo\\tthree\\r"
    assert output.escape("del\x7f c1\x9b") == "del\\x7f c1\\x9b"
    assert output.escape("bidi\u202e") == "bidi\\u202e"
    assert output.escape("héllo ✓ 日本") == "héllo ✓ 日本"


def test_format_time() -> None:
    assert output.format_time(None) == "not available"
    assert output.format_time(datetime(2026, 3, 7, 10, 0, 0, 123)) == "2026-03-07 10:00:00"
    aware = datetime(2026, 3, 7, 10, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert output.format_time(aware) == aware.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    as_text = datetime(2026, 3, 7, 8, 0, 0, tzinfo=UTC).isoformat()
    assert output.format_time(as_text) == output.format_time(aware)


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_tty_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert output._colour_allowed(_Stream(True))
    assert not output._colour_allowed(_Stream(False))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not output._colour_allowed(_Stream(True))


def test_views_colour_and_plain() -> None:
    snap = output.Snapshot("T", [("Status", "failed")])
    assert snap.lines(False) == ["T", "  Status: failed"]
    coloured = snap.lines(True)
    assert "\x1b[" in coloured[0] and "\x1b[" in coloured[1]
    table = output.Table("Kitaru things", ["A", "Long header"], [["x", "failed"]])
    assert table.lines(False) == [
        "Kitaru things",
        "  A   Long header",
        "  -   -----------",
        "  x   failed",
    ]
    # Colour codes do not break the alignment.
    assert [click_unstyle(line) for line in table.lines(True)] == table.lines(False)
    empty = output.Table("Kitaru things", ["A"], [])
    assert empty.lines(False) == ["Kitaru things", "  Things: none found"]


def click_unstyle(text: str) -> str:
    import click

    return click.unstyle(text)


def test_no_colour_in_tests(invoke: Invoke, store: Store) -> None:
    make_execution(store, status="failed")
    result = invoke("executions", "list", color=False)
    assert "\x1b" not in result.stdout


def test_text_escapes_control_characters(invoke: Invoke, store: Store) -> None:
    failure = {"message": "bad\x1b[31mred\nnext", "origin": "user_code"}
    exec_id = make_execution(store, status="failed", failure=failure)
    result = invoke("executions", "get", exec_id)
    assert result.exit_code == 0
    assert "  Failure: bad\\x1b[31mred\\nnext" in result.stdout.splitlines()
    assert "\x1b" not in result.stdout


def test_json_keeps_non_ascii_and_control_characters(invoke: Invoke, store: Store) -> None:
    message = "héllo ✓ 日本 \x1b"
    exec_id = make_execution(store, status="failed", failure={"message": message})
    result = invoke("executions", "get", exec_id, "-o", "json")
    assert result.exit_code == 0
    assert parse(result.stdout)["item"]["failure"]["message"] == message
    assert "日本" in result.stdout_bytes.decode("utf-8")


def test_json_falls_back_for_lone_surrogates() -> None:
    data = output._dumps({"name": "bad\udcff"}, indent=False)
    import json

    assert json.loads(data) == {"name": "bad\udcff"}


def _break_stacks(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    import kitaru.client

    def stacks(self: Any) -> Any:
        raise exc

    monkeypatch.setattr(kitaru.client._Project, "stacks", stacks)


def test_unexpected_error_has_type_and_no_traceback(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_stacks(monkeypatch, RuntimeError("kaput"))
    result = invoke("stack", "list")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: RuntimeError: kaput\n"
    result = invoke("stack", "list", "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert parse(result.stderr) == {
        "command": "stack.list",
        "error": {"type": "RuntimeError", "message": "kaput"},
    }


def test_lookup_and_value_errors_are_handled(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_stacks(monkeypatch, LookupError("nothing here"))
    assert invoke("stack", "list").stderr == "Error: nothing here\n"
    _break_stacks(monkeypatch, ValueError("bad value\nsecond line"))
    result = invoke("stack", "list")
    assert result.exit_code == 1
    assert result.stderr == "Error: bad value\\nsecond line\n"


def test_traceback_only_with_kitaru_debug(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    _break_stacks(monkeypatch, RuntimeError("kaput"))
    assert "Traceback" not in invoke("stack", "list").stderr
    monkeypatch.setenv("KITARU_DEBUG", "1")
    result = invoke("stack", "list")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.endswith("Error: RuntimeError: kaput\n")
