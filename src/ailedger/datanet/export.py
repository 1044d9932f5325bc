"""Write a Datanet version back out as JSONL, verified against the root the ledger froze.

The version lists its record hashes in acceptance order; their Merkle root (`core.merkle.merkle_root`)
must equal the version's root, and every record's bytes must hash to its hash (the blob store and
the HTTP client check that on every read; it is checked once more here). Each line of the output is
the record's canonical JSON exactly as stored, so anyone can re-hash the lines, rebuild the root
and compare it with the ledger without trusting this program. The file appears only when all of it
is written and checked (a temporary file renamed into place).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.chain.files import atomic_write
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.datanet.remote import DatanetBackend, pages

Progress = Callable[[str, int, int | None], None]
PAGE = 10_000


def version_hashes(backend: DatanetBackend, name: str, version: int) -> tuple[dict[str, Any], list[bytes]]:
    """The version's document (root, count, height) and all its record hashes, page by page."""
    docs = list(pages(lambda offset: backend.datanet_version(name, version, offset, PAGE)))
    return docs[0], [bytes.fromhex(h) for doc in docs for h in doc["hashes"]]


def retracted(backend: DatanetBackend, name: str, hashes: list[bytes]) -> set[bytes]:
    """Which of `hashes` have been retracted since (datanet tx 0x0208), asked PAGE hashes at a time."""
    out: set[bytes] = set()
    for i in range(0, len(hashes), PAGE):
        chunk = hashes[i:i + PAGE]
        known = backend.datanet_known(name, [h.hex() for h in chunk])["known"]
        out |= {h for h in chunk if known.get(h.hex()) == "retracted"}
    return out


def export_version(datanet_name: str, version: int, backend: DatanetBackend, out_path: Path | str,
                   progress: Progress | None = None, skip_retracted: bool = False) -> dict[str, Any]:
    """Write version `version` of the Datanet to `out_path` (JSONL); returns what was written and checked.

    With `skip_retracted` the records retracted since the version froze are left out (`datanet export` does
    this: a retracted record is out of use). The version's hash list is still checked against its root, but
    the file alone then no longer rebuilds that root; training, which must, exports every record.
    """
    out = Path(out_path)
    doc, hashes = version_hashes(backend, datanet_name, version)
    root = bytes.fromhex(doc["root"])
    if len(hashes) != doc["count"] or merkle_root(hashes) != root:
        raise LedgerError(errors.EXPORT_MISMATCH, f"{len(hashes)} hashes for a count of {doc['count']}, or their "
                                                  f"root differs from {doc['root']}")
    gone = retracted(backend, datanet_name, hashes) if skip_retracted else set()
    tick = progress or (lambda stage, done, total: None)
    size = 0
    with atomic_write(out) as f:
        for i, h in enumerate(hashes):
            if h in gone:
                tick("export", i + 1, len(hashes))
                continue
            blob = backend.get_blob(h.hex())
            if hashlib.sha256(blob).digest() != h or b"\n" in blob:
                raise LedgerError(errors.EXPORT_MISMATCH, f"record {i} ({h.hex()}) has other bytes than its hash")
            f.write(blob + b"\n")
            size += len(blob) + 1
            tick("export", i + 1, len(hashes))
    return {"datanet": doc["datanet"], "version": doc["version"], "root": doc["root"], "count": doc["count"],
            "height": doc["height"], "out": str(out), "bytes": size, "verified": True,
            "written": len(hashes) - len(gone), "retracted": sorted(h.hex() for h in gone)}


def export_lines(path: Path | str) -> list[tuple[bytes, bytes]]:
    """Each record of an exported file as (its hash, its bytes), in the file's order."""
    with open(path, "rb") as f:
        lines = [line.rstrip(b"\n") for line in f]
    return [(hashlib.sha256(line).digest(), line) for line in lines]


def verify_export(path: Path | str, root_hex: str) -> bool:
    """Re-hash an exported file's lines and compare their Merkle root with `root_hex` (the ledger's)."""
    return merkle_root([h for h, _ in export_lines(path)]).hex() == root_hex.lower()
