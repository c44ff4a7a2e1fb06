"""``kitaru artifacts``: list an execution's artifacts and read one back."""

from __future__ import annotations

import json
from typing import Any

import click

from kitaru.cli._client import get_client
from kitaru.cli._params import exec_id_argument
from kitaru.cli.output import Snapshot, Table, emit, output_format, output_option, write_value

__all__ = ["artifacts", "value_payload"]

_PREVIEW = 200


@click.group()
def artifacts() -> None:
    """List and read the values checkpoints produced or saved.

    Example: kitaru artifacts list kr-a8f3c2
    """


@artifacts.command("list")
@exec_id_argument()
@click.option("--name", help="Only artifacts with this name.")
@click.option("--kind", help="Only artifacts of this kind (prompt, response, context, ...).")
@click.option("--producing-call", metavar="NAME", help="Only artifacts of this checkpoint.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@output_option
def list_artifacts(
    exec_id: str,
    name: str | None,
    kind: str | None,
    producing_call: str | None,
    limit: int | None,
) -> None:
    """List an execution's artifacts (a unique id prefix is enough).

    Example: kitaru artifacts list kr-a8f3c2 --kind context
    """
    found = get_client().artifacts.list(
        exec_id, name=name, kind=kind, producing_call=producing_call, limit=limit
    )
    rows = [
        [a.artifact_id, a.name, a.kind or "-", a.save_type, a.producing_call or "-"] for a in found
    ]
    headers = ["ID", "Name", "Kind", "Save type", "Producing call"]
    emit(Table("Kitaru artifacts", headers, rows), items=[a.to_dict() for a in found])


def _type_name(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def value_payload(value: Any) -> dict[str, Any]:
    """``value`` (JSON-converted when possible), ``value_format`` (json|repr), ``value_type``."""
    candidate = value
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            candidate = dump(mode="json")
        except Exception:
            candidate = value
    try:
        converted = json.loads(json.dumps(candidate, allow_nan=False))
        fmt = "json"
    except (TypeError, ValueError, RecursionError):
        converted, fmt = repr(value), "repr"
    return {"value": converted, "value_format": fmt, "value_type": _type_name(value)}


def _preview(payload: dict[str, Any]) -> str:
    value = payload["value"]
    if payload["value_format"] == "json":
        text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    else:
        text = value
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


@artifacts.command("get")
@click.argument("artifact_id")
@click.option("--value", "value_only", is_flag=True, help="Print only the value (raw bytes/str).")
@output_option
def get_artifact(artifact_id: str, value_only: bool) -> None:
    """Show one artifact and its value.

    With --value the value alone goes to stdout: a str as is, bytes raw, anything else as
    JSON (ignores --output).

    Example: kitaru artifacts get kr-a8f3c2.a1.0 --value
    """
    ref = get_client().artifacts.get(artifact_id)
    value = ref.load()
    if value_only:
        write_value(value)
        return
    payload = value_payload(value)
    if output_format() == "json":
        emit(Snapshot("", []), item={**ref.to_dict(), **payload})
        return
    rows: list[tuple[str, Any]] = [
        ("Artifact ID", ref.artifact_id),
        ("Name", ref.name),
        ("Kind", ref.kind or "not set"),
        ("Save type", ref.save_type),
        ("Producing call", ref.producing_call or "not available"),
        ("Metadata", json.dumps(ref.metadata, ensure_ascii=False, default=str)),
        ("Value type", payload["value_type"]),
        ("Value format", payload["value_format"]),
        ("Value", _preview(payload)),
    ]
    emit(Snapshot("Kitaru artifact", rows), item={**ref.to_dict(), **payload})
