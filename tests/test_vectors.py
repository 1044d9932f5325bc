"""docs/test-vectors.json against the code, in both directions, plus vectors anyone can recompute.

Why both: a vector file generated from the code only proves the code has not changed since. The
hand-written expectations below (big-endian integers, length prefixes, SHA-256 tags, the RFC 8032
and BIP-350 vectors, an independent Merkle fold) tie the code to the written rules as well, so a
second implementation that passes this file agrees with ours byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ailedger.chain.accounts import (
    AMOUNT_CODEC,
    TRANSFER_CODEC,
    Account,
    AccountsModule,
    Amount,
    Transfer,
    decode_account,
    encode_account,
)
from ailedger.chain.block import HEADER, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.receipt import RECEIPT, Receipt, encode_receipt
from ailedger.chain.runtime import Runtime
from ailedger.chain.state import leaf_data
from ailedger.chain.tx import decode_tx, sign_tx
from ailedger.core.address import (
    _BECH32M_CONST,
    _CHARSET,
    _hrp_expand,
    _polymod,
    address_of,
    decode_address,
    encode_address,
)
from ailedger.core.encoding import AMOUNT, U8, U16, U32, U64, Codec, ListOf, Text, VarBytes
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import leaf_hash, node_hash, sha256, tagged
from ailedger.core.keys import KeyPair, verify
from ailedger.core.merkle import ZERO, MerkleProof, MerkleTree, merkle_root, verify_proof

V: dict[str, Any] = json.loads((Path(__file__).parents[1] / "docs" / "test-vectors.json").read_text("utf-8"))
CODECS: dict[str, Codec[Any]] = {
    "u8": U8, "u16": U16, "u32": U32, "u64": U64, "amount": AMOUNT, "varbytes65536": VarBytes(65536),
    "text32": Text(32), "list_u16_8": ListOf(U16, 8),
}
x = bytes.fromhex


def roundtrip(codec: Codec[Any], value: Any, hexed: str) -> None:
    assert codec.encode(value).hex() == hexed
    assert codec.decode(x(hexed)) == value


# -- by hand --------------------------------------------------------------------------------------

def test_hand_computed_encodings() -> None:
    assert U64.encode(1) == x("0000000000000001")
    assert U16.encode(258) == x("0102")
    assert U32.encode(0x01020304) == x("01020304")
    assert AMOUNT.encode(2**63 - 1) == x("7fffffffffffffff")
    assert VarBytes(10).encode(b"abc") == x("00000003") + b"abc"
    assert Text(4).encode("é") == x("00000002c3a9")
    assert ListOf(U16, 4).encode([1, 2]) == x("00000002" "0001" "0002")
    assert TRANSFER_CODEC.encode(Transfer(bytes(range(20)), 5)) == bytes(range(20)) + x("0000000000000005")


def test_hand_computed_hashes() -> None:
    assert tagged(b"tx", b"") == hashlib.sha256(b"\x02tx").digest()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    pk = x(V["keys"][0]["public_key"])
    assert address_of(pk) == hashlib.sha256(b"\x10ailedger/address" + pk).digest()[:20]


def _ref_root(items: list[bytes]) -> bytes:
    """An independent fold: pair up each level, padding an odd level with that level's zero subtree."""
    zero = [bytes(32)]
    for _ in range(8):
        zero.append(hashlib.sha256(b"\x01" + zero[-1] + zero[-1]).digest())
    level = [hashlib.sha256(b"\x00" + item).digest() for item in items]
    k = 0
    while len(level) > 1:
        if len(level) % 2:
            level.append(zero[k])
        level = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        k += 1
    top = level[0] if level else bytes(32)
    return hashlib.sha256(b"\x02" + len(items).to_bytes(8, "big") + top).digest()


def test_bech32m_matches_bip350() -> None:
    for s in ["a1lqfn3a", "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx", "?1v759aa"]:
        sep = s.rfind("1")
        assert _polymod(_hrp_expand(s[:sep]) + [_CHARSET.index(c) for c in s[sep + 1:]]) == _BECH32M_CONST


def test_ed25519_matches_rfc8032() -> None:
    v = V["ed25519_rfc8032"]
    k = KeyPair.from_seed(x(v["seed"]))
    assert k.public_key.hex() == v["public_key"] == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert k.sign(x(v["message_hex"])).hex() == v["signature"]
    assert verify(k.public_key, b"", x(v["signature"]))


# -- the file -------------------------------------------------------------------------------------

def test_integers() -> None:
    assert {"codec": "u64", "value": 1, "hex": "0000000000000001"} in V["integers"]
    for v in V["integers"]:
        roundtrip(CODECS[v["codec"]], v["value"], v["hex"])
    for v in V["integer_rejects"]:
        with pytest.raises(LedgerError) as info:
            CODECS[v["codec"]].encode(v["value"])
        assert info.value.code.name == v["error"]


def test_variable_length() -> None:
    for v in V["varbytes"]:
        roundtrip(VarBytes(v["max"]), x(v["value_hex"]), v["hex"])
    for v in V["text"]:
        roundtrip(Text(v["max"]), v["value"], v["hex"])
    for v in V["lists"]:
        item = {"u16": U16, "text32": Text(32)}[v["item"]]
        roundtrip(ListOf(item, v["max"]), v["value"], v["hex"])


def test_decode_errors() -> None:
    for v in V["decode_errors"]:
        with pytest.raises(LedgerError) as info:
            CODECS[v["codec"]].decode(x(v["hex"]))
        assert info.value.code.name == v["error"], v


def test_hashes() -> None:
    h = V["hashes"]
    assert sha256(b"").hex() == h["sha256_empty"]
    for v in h["tagged"]:
        tag = v["tag"].encode()
        assert tagged(tag, x(v["data_hex"])).hex() == v["hash"]
        assert hashlib.sha256(bytes([len(tag)]) + tag + x(v["data_hex"])).hexdigest() == v["hash"]
    for v in h["leaf"]:
        assert leaf_hash(x(v["data_hex"])).hex() == v["hash"]
    for v in h["node"]:
        assert node_hash(x(v["left"]), x(v["right"])).hex() == v["hash"]
    assert [z.hex() for z in ZERO[:4]] == V["zero_subtrees"]


def test_merkle_roots_and_proofs() -> None:
    assert [len(v["leaves_hex"]) for v in V["merkle_roots"]] == [0, 1, 2, 3, 5]
    for v in V["merkle_roots"]:
        items = [x(i) for i in v["leaves_hex"]]
        assert merkle_root(items).hex() == v["root"] == _ref_root(items).hex()
    for v in V["merkle_proofs"]:
        items = [x(i) for i in v["leaves_hex"]]
        proof = MerkleProof(v["index"], v["size"], [x(s) for s in v["siblings"]])
        assert MerkleTree.from_data(items).proof(v["index"]) == proof
        assert proof.to_bytes().hex() == v["hex"] and MerkleProof.from_bytes(x(v["hex"])) == proof
        assert verify_proof(x(v["root"]), items[v["index"]], proof)
        assert not verify_proof(x(v["root"]), items[v["index"]] + b"!", proof)


def test_keys_and_addresses() -> None:
    for v in V["keys"]:
        k = KeyPair.from_seed(x(v["seed"]))
        assert k.public_key.hex() == v["public_key"]
        assert k.address.hex() == v["address_hex"] and k.address_text == v["address"]
        assert encode_address(x(v["address_hex"])) == v["address"]
        assert decode_address(v["address"]).hex() == v["address_hex"]
        assert decode_address(v["address"].upper()).hex() == v["address_hex"]


def test_payloads() -> None:
    for v in V["payloads"]:
        if v["name"] == "transfer":
            roundtrip(TRANSFER_CODEC, Transfer(x(v["to"]), v["amount"]), v["hex"])
        else:
            roundtrip(AMOUNT_CODEC, Amount(v["amount"]), v["hex"])


def test_signed_transaction() -> None:
    v = V["transaction"]
    key = KeyPair.from_seed(x(v["seed"]))
    wire = sign_tx(key, v["chain_id"], v["nonce"], v["fee"], v["type"], x(v["payload_hex"]))
    assert wire.hex() == v["wire_hex"]
    assert wire == x(v["body_hex"]) + x(v["signature"])
    tx = decode_tx(wire)
    assert (tx.chain_id, tx.sender, tx.nonce, tx.fee, tx.type) == (
        v["chain_id"], key.public_key, v["nonce"], v["fee"], v["type"])
    assert tx.payload.hex() == v["payload_hex"] and tx.body.hex() == v["body_hex"]
    assert tx.id.hex() == v["tx_id"] == hashlib.sha256(b"\x02tx" + x(v["body_hex"])).hexdigest()
    assert tx.signature_ok() and verify(key.public_key, v["sign_tag"].encode() + tx.body, tx.signature)
    assert encode_address(tx.sender_address) == v["sender_address"]


def test_accounts_receipts_and_state_leaves() -> None:
    for v in V["accounts"]:
        a = Account(v["balance"], v["nonce"], v["stake"], v["unbonding"])
        assert encode_account(a).hex() == v["hex"] and decode_account(x(v["hex"])) == a
    for v in V["receipts"]:
        receipt = Receipt(x(v["tx_id"]), v["code"], v["fee"])
        roundtrip(RECEIPT, receipt, v["hex"])
        assert encode_receipt(receipt).hex() == v["hex"]  # the fast path the runtime uses
    for v in V["state_leaves"]:
        data = leaf_data(x(v["key_hex"]), x(v["value_hex"]))
        assert data.hex() == v["leaf_data_hex"] and leaf_hash(data).hex() == v["leaf_hash"]
        proof = MerkleProof.from_bytes(x(v["proof_hex"]))
        assert (proof.index, proof.size) == (v["index"], v["size"])
        assert verify_proof(x(v["state_root"]), data, proof)


def _header(d: dict[str, Any]) -> BlockHeader:
    return BlockHeader(d["version"], d["chain_id"], d["height"], x(d["parent"]), d["timestamp_ms"],
                       x(d["proposer"]), d["tx_count"], x(d["tx_root"]), x(d["receipts_root"]), x(d["state_root"]))


def test_genesis_and_first_block() -> None:
    c = V["chain"]
    genesis = Genesis.parse(c["genesis_canonical"])
    assert genesis.canonical().decode() == c["genesis_canonical"]
    assert tagged(b"genesis", genesis.canonical()).hex() == c["genesis_hash"]
    runtime = Runtime([AccountsModule()])
    block0, state = runtime.genesis_block(genesis)
    for name, header in [("block0", block0.header), ("block1", _header(c["block1"]["header"]))]:
        assert header == _header(c[name]["header"])
        roundtrip(HEADER, header, c[name]["hex"])
        assert header.hash.hex() == c[name]["hash"]
    b1 = c["block1"]
    proposer = KeyPair.from_seed(x(b1["proposer_seed"]))
    txs = [decode_tx(x(t)) for t in b1["txs"]]
    built = runtime.build_block(state, block0.header, b1["timestamp_ms"], proposer, txs)
    assert built.block is not None and built.block.header == _header(b1["header"])
    assert built.block.signature.hex() == b1["signature"]
    assert [RECEIPT.encode(r).hex() for r in built.receipts] == [c["receipt"]["hex"]]
    _, fresh = runtime.genesis_block(genesis)
    runtime.validate_block(fresh, block0.header, built.block)
    assert fresh.root() == x(b1["header"]["state_root"])
