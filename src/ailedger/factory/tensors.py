"""Safetensors files read at the byte level: a checked header, and a hash that ignores file layout.

Why not `safetensors.safe_open`: a truncated or damaged file must be refused with a specific code
before any tensor is used, and the hash must not depend on how tensors are spread over files or
ordered inside one (sharding, `save_pretrained` versions). The hash covers, for each tensor in name
order: its name, dtype, shape and raw little-endian bytes, each length-prefixed, so two directories
holding the same tensors hash the same however they were written.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.jsondoc import parse_object

HASH_TAG = b"ailedger/tensors/v1"
MAX_HEADER = 100_000_000
CHUNK = 1 << 22


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    start: int  # absolute byte offset in `file`
    end: int


def read_header(path: Path) -> list[TensorEntry]:
    """The tensors a safetensors file lists, after checking that the file holds all their bytes."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise LedgerError(errors.WEIGHTS_TRUNCATED, f"{path}: {len(head)} bytes, no header")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise LedgerError(errors.WEIGHTS_CORRUPT, f"{path}: header length {n} is implausible")
            raw = f.read(n)
    except OSError as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc}") from exc
    if len(raw) < n:
        raise LedgerError(errors.WEIGHTS_TRUNCATED, f"{path}: header cut at {len(raw)} of {n} bytes")
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        entries = []
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            lo, hi = (int(x) for x in meta["data_offsets"])
            shape = tuple(int(d) for d in meta["shape"])
            if not 0 <= lo <= hi:
                raise ValueError(f"{name}: offsets {lo}..{hi}")
            entries.append(TensorEntry(name, str(meta["dtype"]), shape, path, 8 + n + lo, 8 + n + hi))
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerError(errors.WEIGHTS_CORRUPT, f"{path}: header does not parse ({exc})") from exc
    end = max((e.end for e in entries), default=8 + n)
    if end > size:
        raise LedgerError(errors.WEIGHTS_TRUNCATED, f"{path}: {size} bytes, its header lists {end}")
    return entries


def dir_entries(directory: Path, pattern: str = "*.safetensors") -> list[TensorEntry]:
    """All tensors of the safetensors files in `directory`, by name; a name held twice is corrupt."""
    files = sorted(directory.glob(pattern))
    if not files:
        raise LedgerError(errors.FILE_UNREADABLE, f"{directory}: no {pattern} file")
    by_name: dict[str, TensorEntry] = {}
    for path in files:
        for entry in read_header(path):
            if entry.name in by_name:
                raise LedgerError(errors.WEIGHTS_CORRUPT, f"{directory}: tensor {entry.name} appears twice")
            by_name[entry.name] = entry
    return [by_name[k] for k in sorted(by_name)]


def tensors_hash(entries: list[TensorEntry]) -> str:
    """SHA-256 (hex) over the tensors in name order: name, dtype, shape, bytes, each length-prefixed."""
    h = hashlib.sha256()
    h.update(bytes((len(HASH_TAG),)) + HASH_TAG)

    def field(data: bytes) -> None:
        h.update(struct.pack("<Q", len(data)) + data)

    for e in sorted(entries, key=lambda e: e.name):
        field(e.name.encode())
        field(e.dtype.encode())
        field(json.dumps(list(e.shape)).encode())
        h.update(struct.pack("<Q", e.end - e.start))
        try:
            with open(e.file, "rb") as f:
                f.seek(e.start)
                left = e.end - e.start
                while left:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        raise LedgerError(errors.WEIGHTS_TRUNCATED, f"{e.file}: ends inside tensor {e.name}")
                    h.update(chunk)
                    left -= len(chunk)
        except OSError as exc:
            raise LedgerError(errors.FILE_UNREADABLE, f"{e.file}: {exc}") from exc
    return h.hexdigest()


def params_count(entries: list[TensorEntry]) -> int:
    total = 0
    for e in entries:
        n = 1
        for d in e.shape:
            n *= d
        total += n
    return total


def canonical_json_hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_adapter_json(path: Path) -> tuple[bytes, dict[str, Any]]:
    """One of an adapter's JSON files (config, card): its bytes and the object; anything else is adapter_invalid."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise LedgerError(errors.ADAPTER_INVALID, f"{path} is missing") from exc
    except OSError as exc:
        raise LedgerError(errors.ADAPTER_INVALID, f"{path}: {exc}") from exc
    return raw, parse_object(raw, errors.ADAPTER_INVALID, str(path))
