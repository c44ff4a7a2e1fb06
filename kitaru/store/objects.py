"""Content-addressed blobs and the value codecs.

A blob lives at ``objects/<aa>/<rest>`` named by the sha256 of its bytes; writing one that
exists is a no-op, so concurrent writers cannot conflict. A value is encoded with the first
codec that round-trips it exactly: ``json`` (exactly-JSON values), ``pydantic`` (JSON plus the
class path), else ``pickle``. Small encodings live inline in the record that refers to them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import math
import os
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

import orjson

from kitaru.errors import KitaruCorruptRecordError, KitaruRuntimeError
from kitaru.store.atomic import ensure_dir, read_bytes, write_new

__all__ = ["INLINE_LIMIT", "BlobStore", "decode_value", "encode_value", "is_exact_json"]

INLINE_LIMIT = 16 * 1024
_MAX_DEPTH = 200


class BlobStore:
    """The ``objects/`` folder of one store."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = root
        self.durable = durable

    def path(self, digest: str) -> Path:
        """Path of the blob named ``digest`` (hex sha256)."""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise KitaruCorruptRecordError(self.root, f"invalid blob id {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its digest; durable before it returns."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        try:
            os.utime(path)  # reused: fresh again, so doctor --fix does not take it as stale
        except FileNotFoundError:
            ensure_dir(path.parent, durable=self.durable)
            write_new(path, data, durable=self.durable)
        return digest

    def get(self, digest: str) -> bytes:
        """Return a blob's bytes, verifying its hash."""
        path = self.path(digest)
        try:
            data = read_bytes(path, limit=1 << 40)
        except FileNotFoundError as exc:
            raise KitaruCorruptRecordError(path, "blob is missing") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise KitaruCorruptRecordError(path, "blob content does not match its hash")
        return data


def is_exact_json(value: Any, depth: int = 0) -> bool:
    """True if ``value`` survives a JSON round trip with every type unchanged."""
    if depth > _MAX_DEPTH:
        return False
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return True
    if kind is int:
        return -(2**63) <= value < 2**64
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(is_exact_json(item, depth + 1) for item in value)
    if kind is dict:
        return all(
            type(key) is str and is_exact_json(item, depth + 1) for key, item in value.items()
        )
    return False


def _pydantic_base() -> type | None:
    module = sys.modules.get("pydantic")
    return getattr(module, "BaseModel", None) if module else None


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _encode_pydantic(value: Any) -> dict[str, Any] | None:
    base = _pydantic_base()
    if base is None or not isinstance(value, base):
        return None
    cls = type(value)
    try:
        data = orjson.loads(value.model_dump_json())
        if cls.model_validate(data) != value:
            return None
    except Exception:
        return None
    return {"codec": "pydantic", "class": _class_path(cls), "data": data}


def _pickle_allowed(store_root: Path) -> bool:
    info = os.stat(store_root)
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def encode_value(value: Any, blobs: BlobStore) -> dict[str, Any]:
    """Encode ``value`` into a reference dict, inline when small, else as a blob."""
    ref: dict[str, Any] | None = None
    if is_exact_json(value):
        try:
            raw = orjson.dumps(value)
            ref = {"codec": "json", "data": value}
        except orjson.JSONEncodeError:  # e.g. a str with a lone surrogate: JSON cannot hold it
            ref = None
    if ref is None:
        pyd = _encode_pydantic(value)
        if pyd is not None:
            ref, raw = pyd, orjson.dumps(pyd["data"])
        else:
            try:
                raw = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise KitaruRuntimeError(
                    f"Cannot serialize a value of type {type(value).__qualname__}: {exc}"
                ) from exc
            ref = {
                "codec": "pickle",
                "type": _class_path(type(value)),
                "data": base64.b64encode(raw).decode(),
            }
    if len(raw) > INLINE_LIMIT:
        ref.pop("data")
        ref["blob"] = blobs.put(raw)
        ref["size"] = len(raw)
    return ref


def _load_class(path: str) -> type | None:
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    base = _pydantic_base()
    return obj if isinstance(obj, type) and base is not None and issubclass(obj, base) else None


def decode_value(ref: dict[str, Any], blobs: BlobStore) -> Any:
    """Decode a reference written by ``encode_value``."""
    codec = ref.get("codec")
    if "blob" in ref:
        raw = blobs.get(ref["blob"])
        data = raw if codec == "pickle" else orjson.loads(raw)
    elif codec == "pickle":
        raw = base64.b64decode(ref["data"])
        data = raw
    else:
        data = ref.get("data")
    if codec == "json":
        return data
    if codec == "pydantic":
        cls = _load_class(ref["class"])
        if cls is None:
            warnings.warn(
                f"Cannot import {ref['class']}; returning its JSON data instead.",
                RuntimeWarning,
                stacklevel=2,
            )
            return data
        return cls.model_validate(data)
    if codec == "pickle":
        if not _pickle_allowed(blobs.root.parent):
            raise KitaruRuntimeError(
                f"Refusing to unpickle a value from {blobs.root.parent}: the store is not owned "
                "by you or is writable by others."
            )
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise KitaruRuntimeError(f"Cannot deserialize pickled value: {exc}") from exc
    raise KitaruCorruptRecordError(blobs.root, f"unknown value codec {codec!r}")
