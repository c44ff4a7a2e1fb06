"""Parameters shared by commands: strict JSON options, ``--since``, and id completion.

Only the standard library and Click are imported here, so ``kitaru --help`` stays fast.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click

__all__ = [
    "MAX_JSON_BYTES",
    "SinceType",
    "complete_exec_id",
    "exec_id_argument",
    "parse_json",
    "parse_json_object",
]

F = TypeVar("F", bound=Callable[..., Any])

MAX_JSON_BYTES = 1024 * 1024


class _Rejected(ValueError):
    """A JSON construct the strict parser refuses (NaN, Infinity, a duplicate key)."""


def _reject_constant(name: str) -> Any:
    raise _Rejected(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Rejected(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(text: str, option: str) -> Any:
    """Parse an option's value as strict JSON (no NaN/Infinity, no duplicate keys, <= 1 MiB).

    Raises:
        ValueError: ``Invalid JSON for `<option>`: <message> (line L, column C).`` (``Invalid
            JSON: ...`` when ``option`` is empty).
    """
    what = f"Invalid JSON for `{option}`" if option else "Invalid JSON"
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_JSON_BYTES:
        raise ValueError(
            f"{what}: the value is {size} bytes; the limit is {MAX_JSON_BYTES} (1 MiB)."
        )
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    except _Rejected as exc:
        raise ValueError(f"{what}: {exc}.") from None
    except RecursionError:
        raise ValueError(f"{what}: nested too deeply.") from None


def parse_json_object(text: str | None, option: str, example: str) -> dict[str, Any] | None:
    """Parse an option that must hold a JSON object; ``None`` when the option was not given."""
    if text is None:
        return None
    value = parse_json(text, option)
    if not isinstance(value, dict):
        raise ValueError(f"`{option}` must be a JSON object (for example: '{example}').")
    return value


# -- --since ------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class SinceType(click.ParamType):
    """A point in time: ISO date/time (naive = local time) or a duration ago (``2h``, ``7d``)."""

    name = "since"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return an aware ``datetime``."""
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        match = _DURATION.match(text)
        if match:
            amount, unit = float(match.group(1)), match.group(2).lower()
            return datetime.now().astimezone() - timedelta(**{_UNITS[unit]: amount})
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text else "x")
        except ValueError:
            self.fail(
                f"{value!r} is neither an ISO date/time (2026-03-07, 2026-03-07T10:00) nor a "
                "duration such as 30m, 2h, 7d.",
                param,
                ctx,
            )
        return moment if moment.tzinfo is not None else moment.astimezone()


# -- execution ids ------------------------------------------------------------------------------


def complete_exec_id(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Shell completion of execution ids (never raises: no store or a bad one completes nothing)."""
    from click.shell_completion import CompletionItem

    try:
        from kitaru.cli._client import get_client

        found = get_client().executions.list()
        return [
            CompletionItem(e.exec_id, help=f"{e.flow_name or ''} {e.status.value}".strip())
            for e in found
            if e.exec_id.startswith(incomplete) or e.exec_id.startswith(f"kr-{incomplete}")
        ]
    except Exception:
        return []


def exec_id_argument(name: str = "exec_id", *, required: bool = True) -> Callable[[F], F]:
    """The ``EXEC_ID`` argument: a full id or a unique prefix, completed from the store."""
    return click.argument(
        name, metavar="EXEC_ID", required=required, shell_complete=complete_exec_id
    )
