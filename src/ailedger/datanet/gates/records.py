"""What a record is to the gates: its canonical bytes, its hash, and the text the gates read.

Why canonical JSON: the same record must hash to the same bytes on every machine and in every
language, whatever the key order or spacing of the file it came from, so sorted keys, no spaces,
and UTF-8 as is (`ensure_ascii=False`, which is also the smallest encoding). The record hash is
what the ledger stores; the blob store keeps the canonical bytes under it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from ailedger.core.hashing import canonical_json


def canonical_record(obj: Any) -> bytes:
    return canonical_json(obj)


def record_hash(obj: Any) -> bytes:
    return hashlib.sha256(canonical_record(obj)).digest()


def _strings(value: Any) -> Iterator[str]:
    """Every string inside `value`, objects in sorted key order, arrays in order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _strings(value[key])
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def record_text(obj: Any, fields: Sequence[str] | None = None) -> str:
    """The text the gates look at, one field per line.

    With `fields` only those top-level fields count (a Datanet names its text fields so that ids and
    labels do not dilute the heuristics); without, every string anywhere in the record, so nothing
    can hide PII in a nested field.
    """
    if fields is None:
        return "\n".join(_strings(obj))
    if not isinstance(obj, dict):
        return ""
    return "\n".join(s for f in fields if f in obj for s in _strings(obj[f]))
