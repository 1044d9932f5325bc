"""Where a command reads and writes: a running node over HTTP (`--node URL`) or a data directory.

Why one protocol: the HTTP client and the embedded node answer the same calls with the same JSON
(chain/views.py), so every command is written once and works against either. Embedded writes seal
a block at once with the data directory's proposer key, since no producer loop is running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from ailedger.chain.writerlock import lock_writer
from ailedger.cli.output import Settings
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.remote import DatanetBackend

if TYPE_CHECKING:
    from ailedger.agents.service import AgentReads
    from ailedger.billing.service import BillingReads
    from ailedger.datanet.service import DatanetReads
    from ailedger.governance.service import GovReads
    from ailedger.market.service import JobReads
    from ailedger.models.service import ModelReads
    from ailedger.settlement.service import SettlementReads

NODE_ENV = "AILEDGER_NODE"

NodeOpt = Annotated[str | None, typer.Option(
    "--node", envvar=NODE_ENV, help="URL of a running node, e.g. http://127.0.0.1:8645 (env AILEDGER_NODE).")]
DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="Use this data directory in-process instead of a node (default HOME/data).", file_okay=False)]
ChainDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="The chain's data directory (default HOME/data).", file_okay=False)]


class Backend(DatanetBackend, Protocol):
    """The node calls (status, accounts, transactions, blobs, Datanets) plus block and transaction look-ups,
    the model registry, compute jobs and billing."""

    def block(self, height: int | str) -> dict[str, Any]: ...
    def tx(self, tx_id_hex: str, proof: bool = False) -> dict[str, Any]: ...
    def ledger_models(self, include_retired: bool = True) -> dict[str, Any]: ...
    def ledger_model(self, ref: str) -> dict[str, Any]: ...
    def ledger_bases(self) -> dict[str, Any]: ...
    def ledger_base(self, name: str) -> dict[str, Any]: ...
    def jobs(self, status: str | None = None) -> dict[str, Any]: ...
    def job(self, id_hex: str) -> dict[str, Any]: ...
    def billing_account(self, address: str) -> dict[str, Any]: ...
    def billing_key(self, key_hash_hex: str) -> dict[str, Any]: ...
    def billing_receipt(self, id_hex: str) -> dict[str, Any]: ...
    def billing_receipts(self, key_hash_hex: str | None = None, offset: int = 0,
                         limit: int = 100) -> dict[str, Any]: ...
    def billing_escrow(self) -> dict[str, Any]: ...
    def settlement_earnings(self, address: str, datanet: str | None = None, model: str | None = None,
                            from_height: int | None = None, to_height: int | None = None,
                            limit: int = 100) -> dict[str, Any]: ...
    def settlement_line(self, address: str, height: int, limit: int = 100) -> dict[str, Any]: ...
    def settlement_totals(self) -> dict[str, Any]: ...
    def param_history(self, name: str, offset: int = 0, limit: int = 100) -> dict[str, Any]: ...
    def gov_proposals(self, status: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]: ...
    def gov_proposal(self, pid: int, voter: str | None = None) -> dict[str, Any]: ...
    def gov_treasury(self) -> dict[str, Any]: ...
    def market(self, view: str, query: dict[str, str] | None = None) -> dict[str, Any]: ...
    def agents(self, task_type: str | None = None, status: str | None = None) -> dict[str, Any]: ...
    def agent(self, name: str) -> dict[str, Any]: ...
    def agents_registry(self, address: str | None = None) -> dict[str, Any]: ...
    def tasks(self, status: str | None = None, agent: str | None = None, offset: int = 0,
              limit: int = 100) -> dict[str, Any]: ...
    def task(self, tid: int) -> dict[str, Any]: ...


class Embedded:
    """A Node opened on a data directory, for the length of one command."""

    def __init__(self, data_dir: Path, write: bool) -> None:
        from ailedger.chain.node import Node
        from ailedger.chain.nodekey import load_node_key
        from ailedger.modules import default_runtime

        self._lock = lock_writer(data_dir) if write else None
        try:
            key = load_node_key(data_dir) if write else None
            self.node = Node(data_dir, default_runtime(), key)
        except BaseException:
            self._unlock()
            raise
        if write and not self.node.can_produce:
            self.close()
            why = "no node_key.json" if key is None else "node_key.json is not the chain's proposer"
            raise LedgerError(errors.NO_PROPOSER_KEY, f"{data_dir}: {why}")
        self._reads: DatanetReads | None = None
        self._models: ModelReads | None = None
        self._jobs: JobReads | None = None
        self._billing: BillingReads | None = None
        self._settlement: SettlementReads | None = None
        self._gov: GovReads | None = None

    @property
    def reads(self) -> DatanetReads:
        """The Datanet reads the node's HTTP routes serve, made on first use (they import the gates)."""
        if self._reads is None:
            from ailedger.datanet.service import DatanetReads

            self._reads = DatanetReads(self.node)
        return self._reads

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def status(self) -> dict[str, Any]:
        return self.node.status()

    def account(self, address: str, proof: bool = False) -> dict[str, Any]:
        return self.node.account(address, proof)

    def block(self, height: int | str) -> dict[str, Any]:
        return self.node.block(height)

    def tx(self, tx_id_hex: str, proof: bool = False) -> dict[str, Any]:
        return self.node.tx(tx_id_hex, proof)

    def params(self) -> dict[str, Any]:
        return self.node.params()

    def param_history(self, name: str, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return self.node.param_history(name, offset, limit)

    def submit(self, raw: bytes) -> dict[str, Any]:
        return self.node.submit(raw)

    def put_blobs(self, blobs: list[bytes]) -> list[str]:
        return self.node.put_blobs(blobs)

    def get_blob(self, hash_hex: str) -> bytes:
        return self.node.get_blob(hash_hex)

    # Datanet reads: the very functions the node's HTTP routes call (datanet/service.py)
    def datanets(self) -> dict[str, Any]:
        return self.reads.datanets()

    def datanet(self, name: str) -> dict[str, Any]:
        return self.reads.datanet(name)

    def datanet_record(self, name: str, hash_hex: str) -> dict[str, Any]:
        return self.reads.record(name, hash_hex)

    def datanet_pending(self, name: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return self.reads.pending(name, limit, offset)

    def datanet_version(self, name: str, number: int, offset: int = 0, limit: int = 10_000) -> dict[str, Any]:
        return self.reads.version(name, number, offset, limit)

    def datanet_version_contributors(self, name: str, version: int, offset: int = 0,
                                     limit: int = 10_000) -> dict[str, Any]:
        return self.reads.version_contributors(name, version, offset, limit)

    def datanet_hashes(self, name: str, status: str = "accepted", offset: int = 0,
                       limit: int = 10_000) -> dict[str, Any]:
        return self.reads.hashes(name, status, offset, limit)

    def datanet_known(self, name: str, hashes_hex: list[str]) -> dict[str, Any]:
        return self.reads.known(name, hashes_hex)

    def reputation(self, address: str) -> dict[str, Any]:
        return self.reads.reputation(address)

    # The model registry and compute jobs: the functions the node's /v1/ledger and /v1/jobs routes call
    @property
    def model_reads(self) -> ModelReads:
        if self._models is None:
            from ailedger.models.service import ModelReads

            self._models = ModelReads(self.node)
        return self._models

    @property
    def job_reads(self) -> JobReads:
        if self._jobs is None:
            from ailedger.market.service import JobReads

            self._jobs = JobReads(self.node)
        return self._jobs

    def ledger_models(self, include_retired: bool = True) -> dict[str, Any]:
        return self.model_reads.models(include_retired)

    def ledger_model(self, ref: str) -> dict[str, Any]:
        return self.model_reads.model(ref)

    def ledger_bases(self) -> dict[str, Any]:
        return self.model_reads.bases()

    def ledger_base(self, name: str) -> dict[str, Any]:
        return self.model_reads.base(name)

    def jobs(self, status: str | None = None) -> dict[str, Any]:
        return self.job_reads.jobs(status)

    def job(self, id_hex: str) -> dict[str, Any]:
        return self.job_reads.job(id_hex)

    # Billing: the functions the node's /v1/billing routes call
    @property
    def billing_reads(self) -> BillingReads:
        if self._billing is None:
            from ailedger.billing.service import BillingReads

            self._billing = BillingReads(self.node)
        return self._billing

    def billing_account(self, address: str) -> dict[str, Any]:
        return self.billing_reads.account(address)

    def billing_key(self, key_hash_hex: str) -> dict[str, Any]:
        return self.billing_reads.key(key_hash_hex)

    def billing_receipt(self, id_hex: str) -> dict[str, Any]:
        return self.billing_reads.receipt(id_hex)

    def billing_receipts(self, key_hash_hex: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return self.billing_reads.receipts(key_hash_hex, offset, limit)

    def billing_escrow(self) -> dict[str, Any]:
        return self.billing_reads.escrow()

    # Settlement: the functions the node's /v1/settlement routes call
    @property
    def settlement_reads(self) -> SettlementReads:
        if self._settlement is None:
            from ailedger.settlement.service import SettlementReads

            self._settlement = SettlementReads(self.node)
        return self._settlement

    def settlement_earnings(self, address: str, datanet: str | None = None, model: str | None = None,
                            from_height: int | None = None, to_height: int | None = None,
                            limit: int = 100) -> dict[str, Any]:
        return self.settlement_reads.earnings(address, datanet, model, from_height, to_height, limit)

    def settlement_line(self, address: str, height: int, limit: int = 100) -> dict[str, Any]:
        return self.settlement_reads.line(address, height, limit)

    def settlement_totals(self) -> dict[str, Any]:
        return self.settlement_reads.totals()

    # Governance: the functions the node's /v1/gov routes call
    @property
    def gov_reads(self) -> GovReads:
        if self._gov is None:
            from ailedger.governance.service import GovReads

            self._gov = GovReads(self.node)
        return self._gov

    def gov_proposals(self, status: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return self.gov_reads.proposals(status, offset, limit)

    def gov_proposal(self, pid: int, voter: str | None = None) -> dict[str, Any]:
        return self.gov_reads.proposal(pid, voter)

    def gov_treasury(self) -> dict[str, Any]:
        return self.gov_reads.treasury()

    # Agents and tasks: the functions the node's /v1/agents and /v1/tasks routes call
    @property
    def agent_reads(self) -> AgentReads:
        from ailedger.agents.service import AgentReads

        return AgentReads(self.node)  # stateless: a new one costs nothing

    def agents(self, task_type: str | None = None, status: str | None = None) -> dict[str, Any]:
        return self.agent_reads.agents(task_type, status)

    def agent(self, name: str) -> dict[str, Any]:
        return self.agent_reads.agent(name)

    def agents_registry(self, address: str | None = None) -> dict[str, Any]:
        return self.agent_reads.registry(address)

    def tasks(self, status: str | None = None, agent: str | None = None, offset: int = 0,
              limit: int = 100) -> dict[str, Any]:
        return self.agent_reads.tasks(status, agent, offset, limit)

    def task(self, tid: int) -> dict[str, Any]:
        return self.agent_reads.task(tid)

    # The compute market: the function the node's /v1/market/VIEW route calls
    def market(self, view: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        from ailedger.market.service import MarketReads

        return MarketReads(self.node).market(view, query)  # stateless: a new one costs nothing

    def wait_for_tx(self, tx_id_hex: str, timeout_s: float) -> dict[str, Any]:
        """Seal the pending transactions into a block now, then return the included transaction."""
        if self.node.tx(tx_id_hex).get("status") == "pending":
            self.node.produce_block()
        return self.node.tx(tx_id_hex)

    def close(self) -> None:
        try:
            self.node.close()
        finally:
            self._unlock()


def data_dir_of(s: Settings, data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else s.data_dir


@contextmanager
def open_backend(s: Settings, node: str | None, data_dir: Path | None, write: bool = False) -> Iterator[Backend]:
    """The node at `node` if given, else the data directory (HOME/data by default)."""
    if node and data_dir is not None:
        raise LedgerError(errors.BAD_ARGUMENT, "give either --node or --data-dir, not both")
    if node:
        from ailedger.api.client import HttpClient

        client = HttpClient(node)
        try:
            yield client
        finally:
            close = getattr(client, "close", None)
            if callable(close):
                close()
        return
    embedded = Embedded(data_dir_of(s, data_dir), write)
    try:
        yield embedded
    finally:
        embedded.close()
