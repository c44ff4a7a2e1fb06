"""Runtime log capture: stdout, stderr and logging lines of a running flow land in logs.jsonl."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cl_helpers import exec_dir, logs, messages, raw_logs

import kitaru
from kitaru import checkpoint, flow
from kitaru.errors import KitaruCorruptRecordError, KitaruUsageError
from kitaru.store import Store
from kitaru.store.atomic import MAX_LINE
from kitaru.store.check import check_store

HERE = str(Path(__file__).resolve())
log = logging.getLogger("cl.logs")


def _line_of(marker: str) -> int:
    """The line number in this file of the statement that contains ``marker``."""
    for number, text in enumerate(Path(HERE).read_text().splitlines(), start=1):
        if marker in text and "_line_of" not in text:
            return number
    raise AssertionError(marker)


@checkpoint
def chatty(x: int) -> int:
    print(f"out {x}")  # MARK-step-print
    sys.stderr.write(f"err {x}\n")
    log.info("info %s", x)  # MARK-step-info
    log.debug("debug %s", x)
    log.warning("warning %s", x)
    return x


@flow
def chatty_flow(x: int) -> int:
    print("body before")  # MARK-runner-print
    log.info("body info")
    value = chatty(x)
    print("body after")
    return value


def _root_snapshot() -> tuple[Any, ...]:
    root = logging.getLogger()
    return (
        sys.stdout,
        sys.stderr,
        root.level,
        list(root.handlers),
        [list(h.filters) for h in root.handlers],
    )


# -- sources, names, levels ------------------------------------------------------------------------


def test_lines_land_with_sources_and_checkpoint_names() -> None:
    handle = chatty_flow.run(1)
    assert handle.wait() == 1
    got = [(e.message, e.source, e.checkpoint_name, e.level) for e in logs(handle.exec_id)]
    assert got == [
        ("body before", "runner", None, "INFO"),
        ("body info", "runner", None, "INFO"),
        ("out 1", "step", "chatty", "INFO"),
        ("err 1", "step", "chatty", "WARNING"),
        ("info 1", "step", "chatty", "INFO"),
        ("warning 1", "step", "chatty", "WARNING"),
        ("body after", "runner", None, "INFO"),
    ]


def test_entries_carry_module_file_and_line() -> None:
    handle = chatty_flow.run(1)
    handle.wait()
    by_message = {e.message: e for e in logs(handle.exec_id)}
    printed = by_message["out 1"]
    assert printed.module == __name__
    assert printed.filename == HERE
    assert printed.lineno == _line_of("MARK-step-print")
    logged = by_message["info 1"]
    assert logged.module == "cl.logs"
    assert logged.filename == HERE
    assert logged.lineno == _line_of("MARK-step-info")
    assert by_message["body before"].lineno == _line_of("MARK-runner-print")
    assert all(e.timestamp for e in by_message.values())


def test_logging_below_info_is_not_captured_even_with_a_debug_root() -> None:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.DEBUG)
    try:
        handle = chatty_flow.run(2)
        handle.wait()
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(before)
    got = messages(handle.exec_id)
    assert "debug 2" not in got
    assert {"info 2", "warning 2"} <= set(got)


@checkpoint
def leveled() -> None:
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        log.log(level, "level %s", logging.getLevelName(level))


@flow
def leveled_flow() -> None:
    leveled()


def test_info_and_up_are_captured_with_their_level() -> None:
    handle = leveled_flow.run()
    handle.wait()
    got = [(e.level, e.message) for e in logs(handle.exec_id)]
    assert got == [
        ("INFO", "level INFO"),
        ("WARNING", "level WARNING"),
        ("ERROR", "level ERROR"),
        ("CRITICAL", "level CRITICAL"),
    ]


# -- the terminal is unchanged, and restored afterwards --------------------------------------------


def test_terminal_still_shows_prints(capsys: pytest.CaptureFixture[str]) -> None:
    handle = chatty_flow.run(3)
    handle.wait()
    out, err = capsys.readouterr()
    assert out.splitlines() == ["body before", "out 3", "body after"]
    assert "err 3" in err.splitlines()


def test_terminal_still_shows_prints_at_fd_level(capfd: pytest.CaptureFixture[str]) -> None:
    handle = chatty_flow.run(3)
    handle.wait()
    out, err = capfd.readouterr()
    assert out.splitlines() == ["body before", "out 3", "body after"]
    assert "err 3" in err.splitlines()
    assert len(messages(handle.exec_id)) == 7


def test_logging_output_shown_is_the_same_as_without_a_flow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for x in (1, 2):
        chatty.func(x)  # the plain function, outside any flow
    outside = [(r.levelname, r.getMessage()) for r in caplog.records]
    caplog.clear()
    chatty_flow.run(1).wait()
    chatty_flow.run(2).wait()
    inside = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "cl.logs"]
    assert inside == outside


def test_root_without_handlers_still_prints_warnings_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    handle = chatty_flow.run(4)
    handle.wait()
    assert root.handlers == []
    err = capsys.readouterr().err.splitlines()
    assert err.count("warning 4") == 1
    assert "info 4" not in err  # lastResort would not have shown INFO either
    assert messages(handle.exec_id).count("warning 4") == 1


def test_streams_and_root_logger_are_restored_after_a_flow() -> None:
    before = _root_snapshot()
    chatty_flow.run(5).wait()
    assert _root_snapshot() == before


@checkpoint
def explode() -> None:
    print("about to fail")
    raise RuntimeError("kaput")


@flow
def exploding() -> None:
    explode()


def test_streams_and_root_logger_are_restored_after_a_failed_flow() -> None:
    before = _root_snapshot()
    handle = exploding.run()
    with pytest.raises(kitaru.KitaruError):
        handle.wait()
    assert _root_snapshot() == before
    assert "about to fail" in messages(handle.exec_id)


def test_root_level_restored_when_it_was_notset_or_debug() -> None:
    root = logging.getLogger()
    before = root.level
    try:
        for level in (logging.NOTSET, logging.DEBUG, logging.ERROR):
            root.setLevel(level)
            chatty_flow.run(6).wait()
            assert root.level == level
    finally:
        root.setLevel(before)


# -- partial and long lines ------------------------------------------------------------------------


@checkpoint
def pieces() -> None:
    print("one", end="")
    print(" two", end="")
    sys.stderr.write("separate\n")
    print(" three")
    sys.stdout.write("a\nb\nc")
    sys.stdout.write("d\n")


@flow
def pieces_flow() -> None:
    pieces()
    print("runner tail", end="")


def test_partial_lines_are_buffered_until_the_newline() -> None:
    handle = pieces_flow.run()
    handle.wait()
    got = [(e.message, e.source) for e in logs(handle.exec_id)]
    assert got == [
        ("separate", "step"),
        ("one two three", "step"),
        ("a", "step"),
        ("b", "step"),
        ("cd", "step"),
        ("runner tail", "runner"),
    ]


@checkpoint
def unfinished() -> None:
    print("no newline at the end", end="")


@flow
def unfinished_flow() -> None:
    unfinished()
    print("body line")


def test_unfinished_line_of_a_checkpoint_keeps_its_checkpoint() -> None:
    handle = unfinished_flow.run()
    handle.wait()
    got = [(e.message, e.source, e.checkpoint_name) for e in logs(handle.exec_id)]
    assert got == [
        ("no newline at the end", "step", "unfinished"),
        ("body line", "runner", None),
    ]


LONG = {
    "ascii": "y" * 70_000,
    "multibyte": "é" * 40_000,
    "escaped": "\x01" * 20_000,
    "exactly-at-limit": "z" * (MAX_LINE - 300),
}


@pytest.mark.parametrize("kind", list(LONG))
def test_a_line_over_64_kib_is_truncated_with_a_marker(kind: str) -> None:
    text = LONG[kind]

    @checkpoint
    def shout() -> None:
        print(text)
        print("after")
        log.warning(text)

    @flow
    def shouting() -> None:
        shout()

    handle = shouting.run()
    handle.wait()
    path = exec_dir(handle.exec_id) / "logs.jsonl"
    assert all(len(line) + 1 <= MAX_LINE for line in path.read_bytes().splitlines())
    entries = raw_logs(handle.exec_id)  # every line parses
    assert [e["message"] for e in entries][1] == "after"
    for entry in (entries[0], entries[2]):
        assert entry["checkpoint_name"] == "shout"
        message = entry["message"]
        if message != text:
            assert message.endswith("[truncated]")
            assert text.startswith(message[: -len(" ... [truncated]")])
    assert len(logs(handle.exec_id)) == 3


# -- threads ---------------------------------------------------------------------------------------


@checkpoint
def worker(x: int) -> int:
    print(f"worker {x}")
    log.info("worker log %s", x)
    return x


@flow
def fan_out(n: int) -> list[int]:
    futures = worker.map(list(range(1, n + 1)))
    single = worker.submit(100)
    return [*futures.result(), single.result()]


def test_output_of_submitted_calls_is_attributed_to_their_checkpoint() -> None:
    handle = fan_out.run(4)
    assert handle.wait() == [1, 2, 3, 4, 100]
    entries = raw_logs(handle.exec_id)
    assert len(entries) == 10
    invocation = {1: "worker", 2: "worker_2", 3: "worker_3", 4: "worker_4", 100: "worker_5"}
    for entry in entries:
        assert entry["source"] == "step"
        assert entry["checkpoint_name"] == "worker"
        x = int(entry["message"].split()[-1])
        assert entry["invocation_id"] == invocation[x]
    assert messages(handle.exec_id, checkpoint="worker_3") == ["worker 3", "worker log 3"]


GATE: dict[str, threading.Event] = {}


@checkpoint
def gated(tag: str) -> str:
    print(f"{tag} step start")
    GATE["started"].set()
    assert GATE["go"].wait(10)
    print(f"{tag} step end")
    return tag


@flow
def gated_flow(tag: str) -> str:
    print(f"{tag} body")
    return gated(tag)


@pytest.fixture
def gate() -> Iterator[dict[str, threading.Event]]:
    GATE.update(started=threading.Event(), go=threading.Event())
    yield GATE
    GATE["go"].set()
    GATE.clear()


def _in_thread(target: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["handle"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_main_thread_prints_are_not_in_a_background_flows_log(
    gate: dict[str, threading.Event], capsys: pytest.CaptureFixture[str]
) -> None:
    Store.init(Path.cwd())
    before = _root_snapshot()
    thread, out = _in_thread(gated_flow.run, "bg")
    assert gate["started"].wait(10)
    print("main thread line")
    log.warning("main thread warning")
    sys.stderr.write("main thread err\n")
    gate["go"].set()
    thread.join(10)
    assert "error" not in out, out.get("error")
    exec_id = out["handle"].exec_id
    assert messages(exec_id) == ["bg body", "bg step start", "bg step end"]
    assert "main thread line" in capsys.readouterr().out
    assert _root_snapshot() == before


def test_two_concurrent_flows_each_capture_only_their_own_lines() -> None:
    Store.init(Path.cwd())
    before = _root_snapshot()
    barrier = threading.Barrier(2, timeout=10)

    @checkpoint
    def talk(tag: str) -> str:
        for i in range(20):
            print(f"{tag} line {i}")
            if i == 5:
                barrier.wait()  # both flows are inside their checkpoint at once
            log.info("%s log %s", tag, i)
        return tag

    @flow
    def talking(tag: str) -> str:
        print(f"{tag} body")
        return talk(tag)

    (t1, out1), (t2, out2) = _in_thread(talking.run, "left"), _in_thread(talking.run, "right")
    t1.join(20)
    t2.join(20)
    assert "error" not in out1 and "error" not in out2, (out1, out2)
    for tag, out in (("left", out1), ("right", out2)):
        got = messages(out["handle"].exec_id)
        assert len(got) == 41
        assert all(m.startswith(tag) for m in got), got
        assert got[0] == f"{tag} body"
    assert _root_snapshot() == before


# -- client.executions.logs ------------------------------------------------------------------------


@checkpoint
def step_a(x: int) -> int:
    print(f"a says {x}")
    return x


@checkpoint
def step_b(x: int) -> int:
    print(f"b says {x}")
    return x


@flow
def multi() -> int:
    print("runner 1")
    step_a(1)
    step_b(2)
    step_a(3)
    print("runner 2")
    return 0


@pytest.fixture
def multi_exec() -> str:
    handle = multi.run()
    handle.wait()
    return handle.exec_id


def test_logs_come_in_time_order(multi_exec: str) -> None:
    entries = logs(multi_exec)
    assert [e.message for e in entries] == [
        "runner 1",
        "a says 1",
        "b says 2",
        "a says 3",
        "runner 2",
    ]
    stamps = [e.timestamp for e in entries]
    assert stamps == sorted(stamps)


def test_logs_by_checkpoint_name_returns_every_invocation(multi_exec: str) -> None:
    assert messages(multi_exec, checkpoint="step_a") == ["a says 1", "a says 3"]
    assert messages(multi_exec, checkpoint="  step_a  ") == ["a says 1", "a says 3"]
    assert messages(multi_exec, checkpoint="step_b") == ["b says 2"]
    assert messages(multi_exec, checkpoint="step_a", source="step") == ["a says 1", "a says 3"]


def test_logs_by_invocation_id_returns_that_invocation(multi_exec: str) -> None:
    assert messages(multi_exec, checkpoint="step_a_2") == ["a says 3"]
    assert messages(multi_exec, checkpoint="nope") == []


def test_logs_by_source(multi_exec: str) -> None:
    assert messages(multi_exec, source="runner") == ["runner 1", "runner 2"]
    assert messages(multi_exec, source="  STEP ") == ["a says 1", "b says 2", "a says 3"]
    assert all(e.checkpoint_name is None for e in logs(multi_exec, source="runner"))


def test_logs_limit_returns_the_earliest(multi_exec: str) -> None:
    assert messages(multi_exec, limit=2) == ["runner 1", "a says 1"]
    assert messages(multi_exec, source="step", limit=2) == ["a says 1", "b says 2"]
    assert messages(multi_exec, checkpoint="step_a", limit=1) == ["a says 1"]
    assert len(messages(multi_exec, limit=100)) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "`limit` must be >= 1 when provided."),
        ({"limit": -3}, "`limit` must be >= 1 when provided."),
        ({"checkpoint": ""}, "`checkpoint` must be non-empty when provided."),
        ({"checkpoint": "   "}, "`checkpoint` must be non-empty when provided."),
        (
            {"checkpoint": "step_a", "source": "runner"},
            "`checkpoint` cannot be combined with `source='runner'`.",
        ),
        (
            {"checkpoint": "step_a", "source": " Runner "},
            "`checkpoint` cannot be combined with `source='runner'`.",
        ),
    ],
)
def test_logs_argument_errors(multi_exec: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(KitaruUsageError) as info:
        logs(multi_exec, **kwargs)
    assert str(info.value) == message


def test_logs_blank_source_is_a_usage_error(multi_exec: str) -> None:
    with pytest.raises(KitaruUsageError):
        logs(multi_exec, source="  ")


# -- damaged logs.jsonl ----------------------------------------------------------------------------


def test_a_torn_last_line_is_skipped_by_readers(multi_exec: str) -> None:
    path = exec_dir(multi_exec) / "logs.jsonl"
    with path.open("ab") as fh:
        fh.write(b'{"timestamp": "2030-01-01T00:00:00+00:00", "message": "half a li')
    assert len(messages(multi_exec)) == 5
    assert len(Store.open().read_logs(multi_exec)) == 5
    report = check_store(Store.open())
    assert report["errors"] == 0  # at most a warning


@pytest.mark.corrupts_store
def test_lines_appended_after_a_torn_line_keep_the_log_readable(multi_exec: str) -> None:
    path = exec_dir(multi_exec) / "logs.jsonl"
    with path.open("ab") as fh:
        fh.write(b'{"message": "torn by a cras')
    # a later run of the same execution (retry, resume) appends more lines
    Store.open().append_log(multi_exec, {"timestamp": "2030-01-01T00:00:00+00:00", "message": "x"})
    try:
        got = messages(multi_exec)
    except KitaruCorruptRecordError as exc:
        pytest.fail(f"logs unreadable: {exc}")
    assert got[-1] == "x"
    assert len(got) == 6


# -- interplay with other code that swaps streams or sets up logging -------------------------------


@flow
def say_once() -> None:
    print("once")


def test_a_redirect_overlapping_a_background_flow_leaves_no_stale_proxy(
    gate: dict[str, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    Store.init(Path.cwd())
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # restored whatever happens
    original = sys.stdout
    thread, out = _in_thread(gated_flow.run, "bg")
    assert gate["started"].wait(10)
    with contextlib.redirect_stdout(io.StringIO()):
        gate["go"].set()
        thread.join(10)
    assert "error" not in out, out.get("error")
    handle = say_once.run()
    handle.wait()
    assert messages(handle.exec_id) == ["once"]
    assert sys.stdout is original


@flow
def chatter_at_all_levels() -> None:
    logging.getLogger("cl.notset").debug("dbg")
    logging.getLogger("cl.notset").info("inf")


def test_a_notset_root_shows_the_same_records_during_a_flow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.NOTSET)
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    root.addHandler(handler)
    try:
        logging.getLogger("cl.notset").debug("dbg")
        logging.getLogger("cl.notset").info("inf")
        outside = list(seen)
        seen.clear()
        handle = chatter_at_all_levels.run()
        handle.wait()
    finally:
        root.removeHandler(handler)
    assert messages(handle.exec_id) == ["inf"]
    assert seen == outside == ["dbg", "inf"]
