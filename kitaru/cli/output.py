"""The one renderer of the CLI: the ``--output`` option, text views, JSON documents, errors.

Commands build a view (:class:`Snapshot`, :class:`Table`, :class:`Success` or :class:`Lines`)
and the JSON payload, then call :func:`emit`; errors reach :func:`emit_error` from the root
group only.
``tabulate`` and ``orjson`` are imported when first needed, to keep ``kitaru --help`` fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

__all__ = [
    "COMMAND_KEY",
    "FORMAT_KEY",
    "Lines",
    "Snapshot",
    "Success",
    "Table",
    "command_name",
    "debug_enabled",
    "echo_lines",
    "emit",
    "emit_error",
    "emit_event",
    "escape",
    "format_time",
    "output_format",
    "output_option",
    "print_traceback",
    "write_value",
]

F = TypeVar("F", bound=Callable[..., Any])

FORMAT_KEY = "kitaru.output"
COMMAND_KEY = "kitaru.command"
_FORMATS = ("text", "json")
_UNSET: Any = object()
Row = tuple[str, Any]


# -- the option ---------------------------------------------------------------------------------


def _check_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    text = (value or "text").strip().lower()
    if text not in _FORMATS:  # reported by the root group, in text since no format is set
        from kitaru.errors import KitaruUsageError

        raise KitaruUsageError("`--output` must be either `text` or `json`.")
    ctx.meta[FORMAT_KEY] = text
    ctx.meta[COMMAND_KEY] = command_name(ctx)
    return text


def output_option(func: F) -> F:
    """Add ``-o/--output text|json`` to a command (the one shared option decorator)."""
    return click.option(
        "-o",
        "--output",
        default="text",
        show_default=True,
        metavar="text|json",
        is_eager=True,
        expose_value=False,
        callback=_check_output,
        help="Output format: text for people, json for programs.",
    )(func)


def output_format(ctx: click.Context | None = None) -> str:
    """Return ``text`` or ``json`` for the command being run (``text`` before it is known)."""
    ctx = ctx or click.get_current_context(silent=True)
    return ctx.meta.get(FORMAT_KEY, "text") if ctx is not None else "text"


def command_name(ctx: click.Context | None) -> str:
    """Return the dotted command name used in JSON documents, e.g. ``executions.get``."""
    if ctx is None:
        return "cli"
    parts = ctx.command_path.split()[1:]
    return ".".join(parts) if parts else "cli"


# -- text helpers -------------------------------------------------------------------------------

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES = {
    code: _NAMED.get(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in [*range(0x20), *range(0x7F, 0xA0), *_BIDI]
}


def escape(value: Any) -> str:
    """Return ``value`` as one printable line: control characters become ``\\x1b``-style text."""
    return str(value).translate(_ESCAPES)


def format_time(value: datetime | str | None) -> str:
    """Return a local time with seconds (``2026-03-07 10:00:00``) or ``not available``."""
    if value is None or value == "":
        return "not available"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return escape(value)
    if value.tzinfo is not None:
        value = value.astimezone()
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _colour_allowed(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _stdout() -> Any:
    return sys.stdout


def _stderr() -> Any:
    return sys.stderr


_STATUS_COLOURS = {
    "completed": "green",
    "failed": "red",
    "waiting": "yellow",
    "running": "cyan",
    "cancelled": "magenta",
}


def _style(text: str, colour: bool, **styles: Any) -> str:
    return click.style(text, **styles) if colour else text


def _cell(value: Any, colour: bool) -> str:
    text = escape("" if value is None else value)
    if colour and text in _STATUS_COLOURS:
        return click.style(text, fg=_STATUS_COLOURS[text])
    return text


# -- views --------------------------------------------------------------------------------------


class Snapshot:
    """A title line, then ``  Label: value`` rows; sections add a blank line and a title."""

    def __init__(
        self,
        title: str,
        rows: Sequence[Row],
        sections: Sequence[tuple[str, Sequence[Row]]] = (),
        warning: str | None = None,
    ) -> None:
        self.title, self.rows, self.sections, self.warning = title, rows, sections, warning

    def lines(self, colour: bool) -> list[str]:
        """Return the text lines of this view."""
        out = [_style(self.title, colour, bold=True)]
        out += [f"  {escape(label)}: {_cell(value, colour)}" for label, value in self.rows]
        if self.warning:
            out.append(f"  {_style('Warning:', colour, fg='yellow')} {escape(self.warning)}")
        for title, rows in self.sections:
            out += ["", _style(title, colour, bold=True)]
            out += [f"  {escape(label)}: {_cell(value, colour)}" for label, value in rows]
        return out


class Table:
    """A title line and an aligned table; an empty table becomes a one-row snapshot."""

    def __init__(
        self,
        title: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        empty: str = "none found",
    ) -> None:
        self.title, self.headers, self.rows, self.empty = title, headers, rows, empty

    def lines(self, colour: bool) -> list[str]:
        """Return the text lines of this view."""
        if not self.rows:
            label = self.title.split()[-1].capitalize()
            return Snapshot(self.title, [(label, self.empty)]).lines(colour)
        import tabulate as tab

        sep = "   "
        fmt = tab.TableFormat(
            lineabove=None,
            linebelowheader=tab.Line("", "-", sep, ""),
            linebetweenrows=None,
            linebelow=None,
            headerrow=tab.DataRow("", sep, ""),
            datarow=tab.DataRow("", sep, ""),
            padding=0,
            with_header_hide=None,
        )
        padding, tab.MIN_PADDING = tab.MIN_PADDING, 0  # columns exactly as wide as their text
        try:
            body = tab.tabulate(
                [[_cell(v, colour) for v in row] for row in self.rows],
                headers=[escape(h) for h in self.headers],
                tablefmt=fmt,
                disable_numparse=True,
                stralign="left",
            )
        finally:
            tab.MIN_PADDING = padding
        title = _style(self.title, colour, bold=True)
        return [title, *(f"  {line.rstrip()}" for line in body.splitlines())]


class Success:
    """A ``<message>`` line followed by ``  <detail>`` lines."""

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        self.message, self.details = message, details

    def lines(self, colour: bool) -> list[str]:
        """Return the text lines of this view."""
        return [escape(self.message), *(f"  {escape(d)}" for d in self.details)]


class Lines:
    """Plain report lines; a leading ``error``/``warning`` word is coloured on a TTY."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines_ = lines

    def lines(self, colour: bool) -> list[str]:
        """Return the text lines of this view."""
        out = []
        for line in self.lines_:
            text = escape(line)
            word = text.split(" ", 1)[0]
            if colour and word in _SEVERITY_COLOURS:
                text = click.style(word, fg=_SEVERITY_COLOURS[word]) + text[len(word) :]
            out.append(text)
        return out


_SEVERITY_COLOURS = {"error": "red", "warning": "yellow"}

View = Snapshot | Table | Success | Lines


# -- JSON ---------------------------------------------------------------------------------------


def _dumps(document: Any, *, indent: bool) -> bytes:
    import orjson

    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(document, option=option, default=str)
    except TypeError:  # e.g. a lone surrogate in a file name: fall back to ASCII escapes
        import json

        return json.dumps(document, default=str, indent=2 if indent else None).encode()


def _write_json(document: dict[str, Any], *, err: bool) -> None:
    stream = _stderr() if err else _stdout()
    data = _dumps(document, indent=_is_tty(stream))
    click.echo(data, err=err)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# -- emitting -----------------------------------------------------------------------------------


def emit(view: View, *, item: Any = _UNSET, items: Sequence[Any] | None = None) -> None:
    """Print a command's result: the text ``view``, or the JSON envelope with item or items.

    Args:
        view: What people see in text mode.
        item: The single JSON record (mutually exclusive with ``items``).
        items: The JSON records of a list command; ``count`` is added.
    """
    ctx = click.get_current_context()
    if output_format(ctx) == "json":
        document: dict[str, Any] = {"command": command_name(ctx)}
        if items is not None:
            document["items"] = list(items)
            document["count"] = len(document["items"])
        elif item is not _UNSET:
            document["item"] = item
        _write_json(document, err=False)
        return
    colour = _colour_allowed(_stdout())
    click.echo("\n".join(view.lines(colour)), color=colour)


def emit_event(event: str, item: dict[str, Any]) -> None:
    """Print one JSON Lines event of a streaming command: ``{"command", "event", "item"}``.

    Always one compact line, flushed at once, whatever the stream is (never indented).
    """
    ctx = click.get_current_context()
    document = {"command": command_name(ctx), "event": event, "item": item}
    click.echo(_dumps(document, indent=False))
    _flush(_stdout())


def echo_lines(lines: Sequence[str], *, err: bool = False) -> None:
    """Print plain text lines (escaped) and flush: streamed output, prompts and banners."""
    for line in lines:
        click.echo(escape(line), err=err)
    _flush(_stderr() if err else _stdout())


def write_value(value: Any) -> None:
    """Write a value alone to stdout: ``str`` as is, ``bytes`` raw, anything else as JSON."""
    stream = _stdout()
    if isinstance(value, bytes | bytearray | memoryview):
        buffer = getattr(stream, "buffer", None)
        if buffer is None:  # a text-only stream: fall back to click's bytes handling
            click.echo(bytes(value), nl=False)
        else:
            stream.flush()
            buffer.write(bytes(value))
            buffer.flush()
        return
    if isinstance(value, str):
        click.echo(value, nl=False)
        return
    click.echo(_dumps(value, indent=False))


def _flush(stream: Any) -> None:
    try:
        stream.flush()
    except (AttributeError, ValueError, OSError):
        pass


def _echo_error_line(message: str) -> None:
    colour = _colour_allowed(_stderr())
    prefix = _style("Error:", colour, fg="red", bold=True)
    click.echo(f"{prefix} {escape(message)}", err=True, color=colour)


def emit_error(ctx: click.Context | None, exc: BaseException, *, expected: bool) -> None:
    """Report an exception on stderr: ``Error: <one line>`` or the JSON error document.

    Args:
        ctx: Any context of the run; its shared ``meta`` holds the failing command's name
            and ``--output`` value, recorded when the option was parsed.
        exc: The exception.
        expected: True for Kitaru/lookup/value errors; otherwise the type prefixes the message.
    """
    message = str(exc) or type(exc).__name__
    if output_format(ctx) == "json":
        name = ctx.meta.get(COMMAND_KEY, "cli") if ctx is not None else "cli"
        error = {"type": type(exc).__name__, "message": message}
        _write_json({"command": name, "error": error}, err=True)
        return
    _echo_error_line(message if expected else f"{type(exc).__name__}: {message}")


def debug_enabled() -> bool:
    """Return True when ``KITARU_DEBUG=1`` asks for tracebacks."""
    return os.environ.get("KITARU_DEBUG", "").strip().lower() in ("1", "true", "yes")


def print_traceback() -> None:
    """Print the current exception's traceback on stderr (``KITARU_DEBUG=1`` only)."""
    import traceback

    click.echo(traceback.format_exc().rstrip(), err=True)
