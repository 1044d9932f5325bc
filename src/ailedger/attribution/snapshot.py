"""What an adapter was trained on, read from the ledger: its snapshot's records and their contributors.

The attribution bundle pays contributors, so it takes both from the ledger and checks them: the
records come from the adapter's `data/` copy of the Datanet version when that copy still hashes to
the version's root (else they are exported again, `factory.data.exported_snapshot`), and the
contributor of each record comes from the ledger's record states, page by page. The version's
record hashes, in order, must make the root that the adapter's card names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.errors import LedgerError
from ailedger.core.merkle import merkle_root
from ailedger.datanet.export import export_lines
from ailedger.datanet.remote import DatanetBackend, pages
from ailedger.factory.adapters import inspect_adapter
from ailedger.factory.data import exported_snapshot

PAGE = 10_000
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Snapshot:
    datanet: str
    version: int
    root: str
    records: list[dict[str, Any]]
    hashes: list[bytes]
    contributors: dict[bytes, bytes]


def contributors(backend: DatanetBackend, datanet: str, version: int) -> list[tuple[bytes, bytes]]:
    """(record hash, contributor address) of every record of the version, in the version's order."""
    return [(bytes.fromhex(h), decode_address(a))
            for page in pages(lambda offset: backend.datanet_version_contributors(datanet, version, offset, PAGE))
            for h, a in page["records"]]


def adapter_snapshot(adapter_dir: Path | str, backend: DatanetBackend, progress: Progress | None = None) -> Snapshot:
    """The records and contributors of the snapshot the adapter's card names, checked against the ledger."""
    card = inspect_adapter(adapter_dir).card
    trained_on = card.get("datanet") or {}
    try:
        name, version, want = str(trained_on["name"]), int(trained_on["version"]), str(trained_on["root"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(errors.ADAPTER_INVALID, f"{adapter_dir}: its card names no Datanet snapshot") from exc
    root, records = exported_snapshot(backend, name, version, Path(adapter_dir) / "data", progress)
    if root != want:
        raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"{name} v{version} has root {root} on the ledger, the "
                                                             f"adapter was trained on {want}")
    hashes = [h for h, _ in export_lines(Path(adapter_dir) / "data" / f"{name}-v{version}.jsonl")]
    pairs = contributors(backend, name, version)
    if [h for h, _ in pairs] != hashes or merkle_root(hashes).hex() != root:
        raise LedgerError(errors.ATTRIBUTION_INDEX_MISMATCH, f"the ledger lists {len(pairs)} records with "
                                                             f"contributors for {name} v{version}, the snapshot has "
                                                             f"{len(hashes)} (or in another order)")
    return Snapshot(name, version, root, records, hashes, dict(pairs))
