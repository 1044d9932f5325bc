"""LedgerAnchor over web3.py: deploy it, post anchors, read them back, and find the EVM evidence of one.

Why every call goes through `rpc_errors`: the anchoring loop must tell "the EVM node is away, wait
and retry" (anchor_rpc_down) from "the contract refuses, stop" (not_anchorer, height_not_increasing),
and a user must never see a web3 traceback. web3 is imported inside functions only: it costs about a
second to import, and plain ledger use never needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailedger.chain.anchor.artifact import Artifact, load_artifact
from ailedger.chain.anchor.evmkey import EvmKey
from ailedger.chain.anchor.record import Anchor
from ailedger.core import errors
from ailedger.core.errors import LedgerError

if TYPE_CHECKING:
    from web3 import Web3

RPC_TIMEOUT_S = 10
RECEIPT_TIMEOUT_S = 120
_EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_REVERT_CODES = {"NotAnchorer": errors.ANCHOR_NOT_ANCHORER, "HeightNotIncreasing": errors.ANCHOR_HEIGHT_NOT_INCREASING}


def checksum_address(text: str) -> str:
    """A 0x address in its checksummed form; anything else is anchor_bad_evm_address."""
    if not isinstance(text, str) or not _EVM_ADDRESS.fullmatch(text):
        raise LedgerError(errors.ANCHOR_BAD_EVM_ADDRESS, repr(text))
    from web3 import Web3

    return str(Web3.to_checksum_address(text))


def connect(rpc: str) -> Web3:
    """A web3 handle that fails fast: retrying is the caller's decision (the loop backs off, commands stop)."""
    from web3 import Web3

    return Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": RPC_TIMEOUT_S}, exception_retry_configuration=None))


def _custom_error(abi: list[dict[str, Any]], data: str) -> tuple[str, list[Any]]:
    """(name, arguments) of a Solidity custom error from its revert data, by the contract's ABI."""
    from eth_abi.abi import decode
    from web3 import Web3

    raw = bytes.fromhex(data.removeprefix("0x"))
    for entry in abi:
        if entry.get("type") != "error":
            continue
        types = [i["type"] for i in entry["inputs"]]
        if Web3.keccak(text=f"{entry['name']}({','.join(types)})")[:4] == raw[:4]:
            values = decode(types, raw[4:])
            return entry["name"], [Web3.to_checksum_address(v) if t == "address" else v
                                   for t, v in zip(types, values, strict=True)]
    return "unknown revert", [data]


@contextmanager
def rpc_errors(rpc: str, abi: list[dict[str, Any]]) -> Iterator[None]:
    """Translate what web3 and the HTTP layer raise into coded ledger errors."""
    from web3.exceptions import (
        BadFunctionCallOutput,
        ContractCustomError,
        ContractLogicError,
        ProviderConnectionError,
        TimeExhausted,
        Web3Exception,
    )

    try:
        yield
    except LedgerError:
        raise
    except ContractCustomError as exc:
        name, args = _custom_error(abi, str(exc.data))
        code = _REVERT_CODES.get(name, errors.ANCHOR_TX_FAILED)
        raise LedgerError(code, f"the contract reverted with {name}({', '.join(map(str, args))})") from None
    except (OSError, ProviderConnectionError) as exc:  # requests' errors are OSErrors: refused, reset, timed out
        raise LedgerError(errors.ANCHOR_RPC_DOWN, f"{rpc}: {exc.__class__.__name__}") from None
    except TimeExhausted as exc:
        raise LedgerError(errors.ANCHOR_TX_FAILED, f"not mined in time: {exc}") from None
    except (BadFunctionCallOutput, ContractLogicError) as exc:
        raise LedgerError(errors.ANCHOR_NO_CONTRACT, f"the call failed: {exc}") from None
    except Web3Exception as exc:
        raise LedgerError(errors.ANCHOR_TX_FAILED, str(exc)) from None


@dataclass(frozen=True)
class Sent:
    """A mined EVM transaction: its hash (0x-hex), its block, and the contract it created, if any."""

    tx_hash: str
    evm_block: int
    contract: str | None = None


def _sender(w3: Web3, key: EvmKey) -> Any:
    """The sending account and its next nonce (pending ones counted, so a retry never reuses a nonce)."""
    address = w3.to_checksum_address(key.address)
    return {"from": address, "nonce": w3.eth.get_transaction_count(address, "pending")}


def _send(w3: Web3, key: EvmKey, tx: dict[str, Any]) -> Sent:
    signed = w3.eth.account.sign_transaction(tx, key.private_key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    if receipt["status"] != 1:
        raise LedgerError(errors.ANCHOR_TX_FAILED, f"transaction {tx_hash.to_0x_hex()} reverted")
    created = receipt.get("contractAddress")
    return Sent(tx_hash.to_0x_hex(), int(receipt["blockNumber"]), str(created) if created else None)


def deploy(rpc: str, key: EvmKey, anchorer: str, ledger_chain_id: str) -> Sent:
    """Create a LedgerAnchor for `ledger_chain_id` whose only poster is `anchorer`; pays from `key`."""
    art = load_artifact()
    with rpc_errors(rpc, art.abi):
        w3 = connect(rpc)
        factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        tx = factory.constructor(checksum_address(anchorer), ledger_chain_id).build_transaction(_sender(w3, key))
        return _send(w3, key, dict(tx))


class AnchorContract:
    """One deployed LedgerAnchor, read and written through one RPC endpoint."""

    def __init__(self, rpc: str, address: str, artifact: Artifact | None = None) -> None:
        self.rpc = rpc
        self.address = checksum_address(address)
        self.artifact = artifact or load_artifact()
        self.w3 = connect(rpc)
        self.contract = self.w3.eth.contract(address=self.address, abi=self.artifact.abi)  # type: ignore[call-overload]

    def _errors(self) -> Any:
        return rpc_errors(self.rpc, self.artifact.abi)

    def evm_chain_id(self) -> int:
        with self._errors():
            return int(self.w3.eth.chain_id)

    def check_code(self) -> None:
        """Refuse an address whose code is not exactly LedgerAnchor's: its rules give an anchor its meaning."""
        with self._errors():
            code = self.w3.eth.get_code(self.address).to_0x_hex()  # type: ignore[arg-type]
        if code != self.artifact.deployed_bytecode:
            what = "no code" if code == "0x" else "other code"
            raise LedgerError(errors.ANCHOR_NO_CONTRACT, f"{self.address} holds {what} on {self.rpc}")

    def anchorer(self) -> str:
        with self._errors():
            return str(self.contract.functions.anchorer().call())

    def ledger_chain_id(self) -> str:
        with self._errors():
            return str(self.contract.functions.ledgerChainId().call())

    def last_height(self) -> int:
        with self._errors():
            return int(self.contract.functions.lastHeight().call())

    def anchor_at(self, height: int) -> Anchor | None:
        from web3.exceptions import ContractCustomError

        with self._errors():
            try:
                block_hash, state_root, receipts_root, evm_block = self.contract.functions.anchorAt(height).call()
            except ContractCustomError:  # NoAnchor(height)
                return None
        return Anchor(height, bytes(block_hash), bytes(state_root), bytes(receipts_root), int(evm_block))

    def anchors(self) -> list[Anchor]:
        """Every anchor, lowest height first."""
        with self._errors():
            count = int(self.contract.functions.anchorCount().call())
            heights = [int(self.contract.functions.heights(i).call()) for i in range(count)]
        found = [self.anchor_at(h) for h in heights]
        return [a for a in found if a is not None]

    def post(self, key: EvmKey, a: Anchor) -> Sent:
        """Record `a` on the EVM chain; the contract reverts unless `key` is the anchorer and the height is new."""
        with self._errors():
            call = self.contract.functions.anchor(a.height, a.block_hash, a.state_root, a.receipts_root)
            tx = call.build_transaction(_sender(self.w3, key))
            return _send(self.w3, key, dict(tx))

    def anchor_tx(self, a: Anchor) -> str:
        """The hash of the EVM transaction that posted `a`, from its Anchored event in block `a.evm_block`."""
        with self._errors():
            logs = self.contract.events.Anchored().get_logs(argument_filters={"height": a.height},
                                                            from_block=a.evm_block, to_block=a.evm_block)
            for log in logs:
                if bytes(log["args"]["blockHash"]) == a.block_hash:
                    return str(log["transactionHash"].to_0x_hex())
        raise LedgerError(errors.ANCHOR_NOT_YET, f"no Anchored event for height {a.height} in EVM block {a.evm_block}")

    def anchored_by_tx(self, tx_hash: str) -> Anchor:
        """The anchor that EVM transaction `tx_hash` posted to this contract (the evidence a proof names)."""
        if not re.fullmatch(r"0x[0-9a-fA-F]{64}", tx_hash or ""):
            raise LedgerError(errors.ANCHOR_PROOF_INVALID, f"transaction hash {tx_hash!r} is not 32 bytes of hex")
        from web3.exceptions import TransactionNotFound

        with self._errors():
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                raise LedgerError(errors.ANCHOR_PROOF_INVALID, f"no transaction {tx_hash} on {self.rpc}") from None
            if receipt["status"] != 1 or receipt["to"] != self.address:
                raise LedgerError(errors.ANCHOR_PROOF_INVALID,
                                  f"transaction {tx_hash} is not a successful call to {self.address}")
            from web3.logs import DISCARD

            events = [e for e in self.contract.events.Anchored().process_receipt(receipt, errors=DISCARD)
                      if e["address"] == self.address]
        if len(events) != 1:
            raise LedgerError(errors.ANCHOR_PROOF_INVALID, f"transaction {tx_hash} posted no anchor")
        args = events[0]["args"]
        return Anchor(int(args["height"]), bytes(args["blockHash"]), bytes(args["stateRoot"]),
                      bytes(args["receiptsRoot"]), int(receipt["blockNumber"]))
