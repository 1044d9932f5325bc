"""The ledger half of `attribution eval`: a Datanet on a real embedded node, its records accepted and frozen.

Why a real node rather than a list of records: what the evaluation attributes to must be what the
ledger says, namely the records of a snapshot (the Merkle root the adapter's card names) and the
contributor the ledger recorded for each, so that a wrong mapping anywhere would show up as wrong
payouts. Each owner label of the facts file gets a deterministic key, bonds the Datanet's stake for
its records and contributes them in signed transactions; one validator accepts every record (the
eval measures attribution, not the Datanet's gates, so stuffers are admitted too); the curator
freezes version 1. Blocks are sealed at once by the node's proposer key, as the CLI's embedded
backend does.

The runtime is passed in (the module registry sits above the engines), so this needs only the
chain and the Datanet layers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.chain.genesis import Allocation, Genesis
from ailedger.chain.node import Node
from ailedger.chain.runtime import Runtime
from ailedger.chain.store import Store
from ailedger.chain.tx import sign_tx
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import sha256
from ailedger.core.keys import KeyPair
from ailedger.core.merkle import merkle_root
from ailedger.datanet import payloads as dn
from ailedger.datanet import views
from ailedger.datanet.gates.records import canonical_record
from ailedger.datanet.remote import receipt_error
from ailedger.datanet.state import FeeSplit

CHAIN_ID = "ailedger-attribution-eval"
DATANET = "facts"
GENESIS_MS = 1_700_000_000_000
BALANCE = 10**15  # micro-units per account: stake for every record and every fee, with room to spare
VALIDATOR_STAKE = 10**9
STAKE_PER_RECORD = 10_000


def owner_key(label: str) -> KeyPair:
    """The key an owner label contributes with (deterministic, so reruns give the same addresses)."""
    return KeyPair.from_seed(sha256(b"ailedger-attribution-eval/" + label.encode()))


@dataclass(frozen=True)
class Snapshot:
    """Version 1 of the eval's Datanet as the ledger froze it."""

    root: bytes
    record_hashes: list[bytes]  # snapshot (acceptance) order
    records: list[dict[str, Any]]
    contributors: dict[bytes, bytes]  # record hash -> contributor address, as the ledger recorded it
    height: int


class _Ledger:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.nonces: dict[bytes, int] = {}
        self.fee = int(node.params()["min_fee"]["value"])

    def block(self, txs: Sequence[tuple[KeyPair, int, bytes]]) -> None:
        """Seal `txs` (key, type, payload) into one block; any failed receipt is raised."""
        ids = []
        for key, tx_type, payload in txs:
            nonce = self.nonces.get(key.address, 0)
            ids.append(self.node.submit(sign_tx(key, CHAIN_ID, nonce, self.fee, tx_type, payload))["tx_id"])
            self.nonces[key.address] = nonce + 1
        self.node.produce_block()
        for tx_id in ids:
            view = self.node.tx(tx_id)
            if view.get("status") != "included":
                raise LedgerError(errors.TX_FAILED, f"transaction {tx_id} was not included in the block")
            failed = receipt_error(view)
            if failed is not None:
                raise failed


def build_snapshot(data_dir: Path | str, runtime: Runtime, contributions: Sequence[tuple[str, dict[str, Any]]]
                   ) -> Snapshot:
    """A fresh chain in `data_dir` with a Datanet holding `contributions` (owner label, record), frozen as v1."""
    labels = sorted({label for label, _ in contributions})
    owners = {label: owner_key(label) for label in labels}
    curator, validator, proposer = (owner_key(f"~{role}") for role in ("curator", "validator", "proposer"))
    allocations = [Allocation(k.address, BALANCE) for k in owners.values()]
    allocations += [Allocation(curator.address, BALANCE), Allocation(validator.address, BALANCE, VALIDATOR_STAKE)]
    genesis = Genesis(CHAIN_ID, GENESIS_MS, proposer.public_key, allocations,
                      {"datanet_min_window_blocks": 1, "datanet_validator_min_stake": VALIDATOR_STAKE})
    Store.create(Path(data_dir), genesis, runtime).close()
    node = Node(Path(data_dir), runtime, proposer)
    try:
        ledger = _Ledger(node)
        create = dn.CreateDatanet(DATANET, "fact tracing", "attribution eval: facts and extra records", bytes(32),
                                  "CC-BY-4.0", STAKE_PER_RECORD, 1, 1, FeeSplit(7_000, 1_500, 1_000, 500))
        ledger.block([(curator, dn.CREATE, dn.CREATE_CODEC.encode(create)),
                      (validator, dn.REGISTER_VALIDATOR, dn.NAMED_CODEC.encode(dn.Named(DATANET)))])
        blobs = [canonical_record(r) for _, r in contributions]
        hashes = [bytes.fromhex(h) for h in node.put_blobs(blobs)]
        if len(set(hashes)) != len(hashes):
            raise LedgerError(errors.BAD_FACTS_FILE, "two records are identical (a record is admitted once); make "
                                                     "every paraphrase and extra text distinct")
        per_tx = int(node.params()["datanet_max_records_per_tx"]["value"])
        by_owner: dict[str, list[bytes]] = {}
        for (label, _), h in zip(contributions, hashes, strict=True):
            by_owner.setdefault(label, []).append(h)
        sends = []
        for label in labels:
            mine = by_owner[label]
            for lo in range(0, len(mine), per_tx):
                chunk = mine[lo:lo + per_tx]
                sends.append((owners[label], dn.CONTRIBUTE,
                              dn.CONTRIBUTE_CODEC.encode(dn.Contribute(DATANET, chunk, merkle_root(chunk)))))
        ledger.block(sends)
        votes = [dn.VoteBatch(DATANET, [dn.Ballot(h, 1) for h in hashes[lo:lo + per_tx]])
                 for lo in range(0, len(hashes), per_tx)]
        ledger.block([(validator, dn.VOTE, dn.VOTE_CODEC.encode(v)) for v in votes])
        ledger.block([(curator, dn.SNAPSHOT, dn.NAMED_CODEC.encode(dn.Named(DATANET)))])
        return _read_snapshot(node)
    finally:
        node.close()


def _read_snapshot(node: Node) -> Snapshot:
    """Version 1's hashes, records and contributors, read back from the ledger and the blob store."""
    state = node.state
    version = views.get_version(state, DATANET, 1)
    if version is None:
        raise LedgerError(errors.VERSION_NOT_FOUND, f"{DATANET} version 1 was not frozen")
    hashes = views.accepted_hashes(state, DATANET, 0, version.count)
    if merkle_root(hashes) != version.root:
        raise LedgerError(errors.EXPORT_MISMATCH, f"accepted hashes do not make the root {version.root.hex()}")
    records, contributors = [], {}
    for h in hashes:
        blob = node.get_blob(h.hex())
        if sha256(blob) != h:
            raise LedgerError(errors.EXPORT_MISMATCH, f"record {h.hex()} has other bytes than its hash")
        records.append(json.loads(blob))
        found = views.get_record(state, DATANET, h)
        if found is None:
            raise LedgerError(errors.EXPORT_MISMATCH, f"record {h.hex()} is in the version but not in the Datanet")
        contributors[h] = found.state.contributor
    return Snapshot(version.root, hashes, records, contributors, version.height)
