"""What the off-ledger Datanet workers need from a node, and how they send it transactions.

Why a protocol here: the contributor, gatekeeper and export workers run against a node over HTTP
(`api.client.HttpClient`) or a data directory opened in-process (the CLI's `Embedded`); both answer
these calls with the same JSON, and this package may not import either (layering), so it names
the calls it uses and takes whatever has them.

`TxSender` signs a run of transactions with consecutive nonces and keeps a few of them in flight,
so a large contribution does not wait one block per transaction; an included transaction whose
receipt failed stops the run with its own error code (its fee was charged, nothing else moved).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ailedger.chain.tx import sign_tx
from ailedger.core import errors
from ailedger.core.errors import ErrorCode, LedgerError
from ailedger.core.jsondoc import parse_object
from ailedger.core.keys import KeyPair

if TYPE_CHECKING:  # the gates pull in NumPy and jsonschema; every CLI command imports this module
    from ailedger.datanet.gates.runner import GateConfig

NO_SCHEMA = "00" * 32
T = TypeVar("T")


class DatanetBackend(Protocol):
    def status(self) -> dict[str, Any]: ...
    def account(self, address: str, proof: bool = False) -> dict[str, Any]: ...
    def params(self) -> dict[str, Any]: ...
    def submit(self, raw: bytes) -> dict[str, Any]: ...
    def wait_for_tx(self, tx_id_hex: str, timeout_s: float) -> dict[str, Any]: ...
    def put_blobs(self, blobs: list[bytes]) -> list[str]: ...
    def get_blob(self, hash_hex: str) -> bytes: ...
    def datanets(self) -> dict[str, Any]: ...
    def datanet(self, name: str) -> dict[str, Any]: ...
    def datanet_record(self, name: str, hash_hex: str) -> dict[str, Any]: ...
    def datanet_pending(self, name: str, limit: int = 100, offset: int = 0) -> dict[str, Any]: ...
    def datanet_version(self, name: str, number: int, offset: int = 0, limit: int = 10_000) -> dict[str, Any]: ...
    def datanet_version_contributors(self, name: str, version: int, offset: int = 0,
                                     limit: int = 10_000) -> dict[str, Any]: ...
    def datanet_hashes(self, name: str, status: str = "accepted", offset: int = 0,
                       limit: int = 10_000) -> dict[str, Any]: ...
    def datanet_known(self, name: str, hashes_hex: list[str]) -> dict[str, Any]: ...
    def reputation(self, address: str) -> dict[str, Any]: ...


class WithReport(LedgerError):
    """A failure of a long run that carries what the run did before it stopped (for --json and the user)."""

    def __init__(self, code: ErrorCode, detail: str, report: dict[str, Any]) -> None:
        super().__init__(code, detail)
        self.report = report


def pages(fetch: Callable[[int], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every page of an offset-paged read, from offset 0 until the node answers `next_offset: null`."""
    offset: int | None = 0
    while offset is not None:
        page = fetch(offset)
        yield page
        offset = page["next_offset"]


def param(backend: DatanetBackend, name: str) -> int:
    return int(backend.params()[name]["value"])


def receipt_error(view: dict[str, Any]) -> LedgerError | None:
    """The error an included transaction's failed receipt names, or None when it succeeded."""
    receipt = view.get("receipt") or {}
    if receipt.get("ok", True):
        return None
    code = errors.by_number(int(receipt.get("code", 0))) or errors.TX_FAILED
    return LedgerError(code, f"transaction {view.get('id')} was included at height {view.get('height')} and charged "
                             f"its fee, but failed: {receipt.get('message', '')}".rstrip(": "))


class TxSender:
    """Sign with consecutive nonces from the account's pending nonce; at most `ahead` wait for a block."""

    def __init__(self, backend: DatanetBackend, key: KeyPair, fee: int | None = None, ahead: int = 8,
                 timeout_s: float = 60.0) -> None:
        self.backend, self.key, self.ahead, self.timeout_s = backend, key, ahead, timeout_s
        self.chain_id = str(backend.status()["chain_id"])
        self.nonce = int(backend.account(key.address_text)["pending_nonce"])
        self.fee = fee if fee is not None else param(backend, "min_fee")
        self._waiting: deque[tuple[str, Callable[[dict[str, Any]], None] | None]] = deque()
        self.sent: list[str] = []

    def send(self, tx_type: int, payload: bytes, on_included: Callable[[dict[str, Any]], None] | None = None) -> str:
        """Submit one transaction (a refusal raises and uses no nonce); returns its id."""
        raw = sign_tx(self.key, self.chain_id, self.nonce, self.fee, tx_type, payload)
        tx_id = str(self.backend.submit(raw)["tx_id"])
        self.nonce += 1
        self.sent.append(tx_id)
        self._waiting.append((tx_id, on_included))
        while len(self._waiting) > self.ahead:
            self._settle_one()
        return tx_id

    def _settle_one(self) -> None:
        tx_id, on_included = self._waiting.popleft()
        view = self.backend.wait_for_tx(tx_id, self.timeout_s)
        failed = receipt_error(view)
        if failed is not None:
            raise failed
        if on_included is not None:
            on_included(view)

    def finish(self) -> None:
        """Wait until every transaction sent is in a block (raising on the first failed receipt)."""
        while self._waiting:
            self._settle_one()


def send_refreshed(sender: TxSender, tx_type: int, items: list[T], encode: Callable[[list[T]], bytes],
                   refresh: Callable[[list[T]], list[T]], codes: Sequence[ErrorCode],
                   on_included: Callable[[list[T]], None] | None = None) -> list[T]:
    """Send `encode(items)`; if the node refuses it with one of `codes` (the Datanet moved on since the
    items were chosen), keep only what `refresh` says still applies and try once more. Returns what was sent."""
    for attempt in range(2):
        if not items:
            return []
        sent = list(items)
        try:
            sender.send(tx_type, encode(sent), None if on_included is None else _bound(on_included, sent))
            return sent
        except LedgerError as exc:
            if attempt or exc.code not in codes:
                raise
            items = refresh(items)
    return []


def _bound(fn: Callable[[list[T]], None], items: list[T]) -> Callable[[dict[str, Any]], None]:
    return lambda _view: fn(items)


def datanet_gate_config(backend: DatanetBackend, dn: dict[str, Any], **settings: Any) -> GateConfig:
    """The gate settings the ledger records for Datanet `dn` (its JSON): schema, threshold, PII policy.

    The schema is fetched from the blob store by its hash (hash-checked on read). The near-duplicate
    index needs a threshold strictly inside (0, 1), so 0 and 10,000 basis points are clamped.
    """
    from ailedger.datanet.gates.runner import GateConfig

    schema = None
    if dn["schema_hash"] != NO_SCHEMA:
        schema = parse_object(backend.get_blob(dn["schema_hash"]), errors.BAD_SCHEMA,
                              f"the schema blob of {dn['name']}")
    threshold = min(max(int(dn["neardup_threshold_bps"]) / 10_000, 0.01), 0.999)
    return GateConfig(schema=schema, neardup_threshold=threshold, pii_policy=dn["pii_policy"], **settings)
