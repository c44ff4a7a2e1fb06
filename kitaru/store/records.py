"""Reading and writing the store's records, each with a schema version and a checked shape.

JSON records go through orjson; ``execution.yaml`` and ``config.yaml`` through a safe YAML loader
that refuses aliases and oversized files. Anything unreadable becomes one
``KitaruCorruptRecordError`` naming the file.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

from kitaru.errors import KitaruCorruptRecordError
from kitaru.store.atomic import read_bytes, write_atomic

__all__ = [
    "SCHEMA_VERSION",
    "check_shape",
    "dump_json",
    "dump_yaml",
    "load_json",
    "load_yaml",
    "read_json_record",
    "read_yaml_record",
    "write_json_record",
]

SCHEMA_VERSION = 1
_YAML_LIMIT = 1024 * 1024


# Required keys and their types, per record kind. Unknown keys are allowed (forward compatible).
_OPT_STR = (str, type(None))
_OPT_DICT = (dict, type(None))
SHAPES: dict[str, dict[str, Any]] = {
    "spec": {
        "schema_version": int,
        "exec_id": str,
        "flow_name": str,
        "source": dict,
        "inputs": dict,
        "settings": dict,
        "created_at": str,
    },
    "state": {
        "schema_version": int,
        "exec_id": str,
        "status": str,
        "flow_name": str,
        "created_at": str,
        "status_reason": _OPT_STR,
        "failure": _OPT_DICT,
        "result": _OPT_DICT,
        "metadata": dict,
        "cancel_requested": bool,
        "runner": _OPT_DICT,
    },
    "call": {
        "schema_version": int,
        "seq": int,
        "name": str,
        "invocation_id": str,
        "status": str,
        "attempts": list,
        "artifacts": list,
        "metadata": dict,
    },
    "wait": {
        "schema_version": int,
        "seq": int,
        "name": str,
        "invocation_id": str,
        "status": str,
        "metadata": dict,
    },
    "cache": {"schema_version": int, "call_id": str},
}

EXECUTION_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
_STATUSES = {
    "state": set(EXECUTION_STATUSES),
    "call": {"running", "completed", "failed"},
    "wait": {"pending", "resolved", "aborted"},
}


def check_shape(kind: str, data: Any, path: Path | str) -> dict[str, Any]:
    """Raise ``KitaruCorruptRecordError`` unless ``data`` has the shape of a ``kind`` record."""
    if not isinstance(data, dict):
        raise KitaruCorruptRecordError(path, f"expected a {kind} record object")
    version = data.get("schema_version")
    if type(version) is int and version > SCHEMA_VERSION:
        raise KitaruCorruptRecordError(
            path, f"schema version {version} is newer than this kitaru supports ({SCHEMA_VERSION})"
        )
    for key, expected in SHAPES[kind].items():
        if key not in data:
            raise KitaruCorruptRecordError(path, f"missing field {key!r}")
        if not isinstance(data[key], expected) or type(data[key]) is bool and expected is int:
            raise KitaruCorruptRecordError(path, f"field {key!r} has the wrong type")
    allowed = _STATUSES.get(kind)
    if allowed and data["status"] not in allowed:
        raise KitaruCorruptRecordError(path, f"unknown status {data['status']!r}")
    return data


def dump_json(data: Any) -> bytes:
    """Encode a record as pretty JSON (records are meant to be read with ``cat`` and ``jq``)."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


def load_json(raw: bytes, path: Path | str) -> Any:
    """Parse JSON bytes, mapping every failure to ``KitaruCorruptRecordError``."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "empty file" if not raw.strip() else f"invalid JSON ({exc})"
        raise KitaruCorruptRecordError(path, reason) from None


@functools.cache
def _yaml() -> tuple[Any, Any, Any]:
    """PyYAML and its (C, when available) safe loader and dumper, imported on first use."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml, loader, dumper


def _reject_aliases(raw: bytes, path: Path) -> None:
    # The C loader cannot be subclassed to refuse aliases, so scan the event stream first.
    yaml, loader, _ = _yaml()
    for event in yaml.parse(raw, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            raise KitaruCorruptRecordError(path, "YAML aliases are not allowed")


def load_yaml(raw: bytes, path: Path) -> Any:
    """Parse YAML safely: no aliases, no tags beyond the safe ones, at most 1 MiB."""
    if len(raw) > _YAML_LIMIT:
        raise KitaruCorruptRecordError(path, "YAML file larger than 1 MiB")
    yaml, loader, _ = _yaml()
    try:
        if b"*" in raw:
            _reject_aliases(raw, path)
        return yaml.load(raw, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KitaruCorruptRecordError(path, f"invalid YAML ({reason})") from None
    except UnicodeDecodeError:
        raise KitaruCorruptRecordError(path, "not valid UTF-8") from None


def dump_yaml(data: Any) -> bytes:
    """Encode a record as block-style YAML.

    A mapping is written item by item, and each item's text is remembered: the YAML
    representer is slow, and most of an execution's spec (its source, settings, defaults) is
    the same for every run of a flow. Block mappings concatenate, so the text is what one
    dump of the whole mapping gives. Items are remembered by ``repr``, which is exact for
    every type the safe dumper can write (``nan``, ``1`` and ``1.0``, tuples and lists differ).
    """
    if not isinstance(data, dict):
        return _dump_yaml_text(data).encode()
    parts = []
    for key, value in data.items():
        memo_key = repr((key, value))
        text = _ITEM_TEXT.get(memo_key)
        if text is None:
            text = _dump_yaml_text({key: value})
            if len(_ITEM_TEXT) >= 512:
                _ITEM_TEXT.clear()
            _ITEM_TEXT[memo_key] = text
        parts.append(text)
    return "".join(parts).encode()


_ITEM_TEXT: dict[str, str] = {}


def _dump_yaml_text(data: Any) -> str:
    yaml, _, dumper = _yaml()
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False)


def read_json_record(path: Path | str, kind: str) -> dict[str, Any]:
    """Read and check a JSON record; a missing file raises ``FileNotFoundError``."""
    return check_shape(kind, load_json(read_bytes(path), path), path)


def read_yaml_record(path: Path, kind: str) -> dict[str, Any]:
    """Read and check a YAML record; a missing file raises ``FileNotFoundError``."""
    return check_shape(kind, load_yaml(read_bytes(path), path), path)


def write_json_record(path: Path | str, data: dict[str, Any], *, durable: bool) -> None:
    """Atomically replace a JSON record."""
    write_atomic(path, dump_json(data), durable=durable)
