"""Property tests of the canonical codec, transaction parsing, addresses and Merkle trees.

Why properties: the decoders face bytes from anyone on the network, so "no input crashes them and
each kind of malformation gets its own code" has to hold for inputs nobody thought to write down.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ailedger.chain.accounts import AMOUNT_CODEC, TRANSFER_CODEC, Amount, Transfer
from ailedger.chain.block import HEADER, BlockHeader
from ailedger.chain.genesis import Genesis
from ailedger.chain.receipt import RECEIPT, Receipt
from ailedger.chain.tx import _TAIL_CODECS, MAX_CHAIN_ID, MAX_PAYLOAD, MAX_TX_BYTES, decode_tx, encode_body
from ailedger.core import errors
from ailedger.core.address import _CHARSET, decode_address, encode_address
from ailedger.core.encoding import AMOUNT, B20, B32, B64, MAX_AMOUNT, U8, U16, U32, U64, Codec, ListOf, Text, VarBytes
from ailedger.core.errors import LedgerError
from ailedger.core.hashing import leaf_hash
from ailedger.core.merkle import MAX_DEPTH, PROOF_CODEC, MerkleProof, MerkleTree, merkle_root, verify_proof

FAST = settings(max_examples=200, deadline=None)

b20, b32, b64 = st.binary(min_size=20, max_size=20), st.binary(min_size=32, max_size=32), \
    st.binary(min_size=64, max_size=64)
amounts = st.integers(0, MAX_AMOUNT)
u64s = st.integers(0, 2**64 - 1)
chain_ids = st.text(max_size=12).filter(lambda s: len(s.encode()) <= MAX_CHAIN_ID)

headers = st.builds(BlockHeader, st.integers(0, 255), chain_ids, u64s, b32, u64s, b32, st.integers(0, 2**32 - 1),
                    b32, b32, b32)
receipts = st.builds(Receipt, b32, st.integers(0, 65535), amounts)
transfers = st.builds(Transfer, b20, amounts)
proofs = st.builds(MerkleProof, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                   st.lists(b32, max_size=MAX_DEPTH))


@st.composite
def txs(draw: st.DrawFn) -> bytes:
    """Wire bytes of a well-formed transaction (the signature need not verify: parsing is the subject)."""
    body = encode_body(draw(chain_ids), draw(b32), draw(u64s), draw(amounts), draw(st.integers(0, 65535)),
                       draw(st.binary(max_size=80)))
    return body + draw(b64)


# (codec, strategy of values, the malformed-input decoder that the network reaches)
CASES: list[tuple[str, Codec[Any], st.SearchStrategy[Any]]] = [
    ("u8", U8, st.integers(0, 255)), ("u16", U16, st.integers(0, 65535)), ("u32", U32, st.integers(0, 2**32 - 1)),
    ("u64", U64, u64s), ("amount", AMOUNT, amounts), ("b20", B20, b20), ("b32", B32, b32), ("b64", B64, b64),
    ("varbytes", VarBytes(64), st.binary(max_size=64)), ("text", Text(40), st.text(max_size=10)),
    ("list", ListOf(U16, 16), st.lists(st.integers(0, 65535), max_size=16)),
    ("nested", ListOf(Text(8), 4), st.lists(st.text(max_size=2), max_size=4)),
    ("header", HEADER, headers), ("receipt", RECEIPT, receipts), ("transfer", TRANSFER_CODEC, transfers),
    ("amount_payload", AMOUNT_CODEC, st.builds(Amount, amounts)), ("proof", PROOF_CODEC, proofs),
]
NETWORK_DECODERS = {"tx": decode_tx, "header": HEADER.decode, "receipt": RECEIPT.decode,
                    "transfer": TRANSFER_CODEC.decode, "proof": MerkleProof.from_bytes}
VALID_WIRE: dict[str, st.SearchStrategy[bytes]] = {
    "tx": txs(), "header": headers.map(HEADER.encode), "receipt": receipts.map(RECEIPT.encode),
    "transfer": transfers.map(TRANSFER_CODEC.encode), "proof": proofs.map(PROOF_CODEC.encode),
}


def code_of(fn: Any, *args: Any) -> str:
    with pytest.raises(LedgerError) as info:
        fn(*args)
    return info.value.code.name


@pytest.mark.parametrize(("name", "codec", "values"), CASES, ids=[c[0] for c in CASES])
@FAST
@given(data=st.data())
def test_every_codec_round_trips(name: str, codec: Codec[Any], values: st.SearchStrategy[Any],
                                 data: st.DataObject) -> None:
    value = data.draw(values)
    raw = codec.encode(value)
    assert codec.decode(raw) == value
    assert codec.encode(codec.decode(raw)) == raw
    if raw:
        cut = data.draw(st.integers(0, len(raw) - 1))
        assert code_of(codec.decode, raw[:cut]) == errors.TRUNCATED.name
    assert code_of(codec.decode, raw + data.draw(st.binary(min_size=1, max_size=8))) == errors.TRAILING_BYTES.name


@st.composite
def hostile(draw: st.DrawFn, name: str) -> bytes:
    """Random bytes, or a valid encoding with a few bytes overwritten, cut, or spliced in."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    raw = bytearray(draw(VALID_WIRE[name]))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "cut", "insert"]))
        i = draw(st.integers(0, len(raw)))
        if op == "set" and i < len(raw):
            raw[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:i + draw(st.integers(1, 8))]
        else:
            raw[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(raw)


@pytest.mark.parametrize("name", list(NETWORK_DECODERS))
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_hostile_bytes_only_raise_ledger_errors(name: str, data: st.DataObject) -> None:
    raw = data.draw(hostile(name))
    try:
        NETWORK_DECODERS[name](raw)
    except LedgerError as exc:
        assert exc.code.number // 100 == 1, exc  # an encoding error, never a state or internal one


def _schema_decode(raw: bytes) -> tuple[list[Any], bytes]:
    values: list[Any] = []
    pos = 0
    for codec in _TAIL_CODECS:
        value, pos = codec.read(raw, pos)  # type: ignore[attr-defined]
        values.append(value)
    sig, pos = B64.read(raw, pos)
    if pos != len(raw):
        raise LedgerError(errors.TRAILING_BYTES)
    return values, sig


@settings(max_examples=500, deadline=None)
@given(raw=hostile("tx"))
def test_tx_schema_codec_agrees_with_decode_tx(raw: bytes) -> None:
    """Same accept/refuse decision and the same fields (error precedence on multiple defects may differ)."""
    try:
        values, sig = _schema_decode(raw)
        schema: tuple[Any, ...] | str = (*values, sig)
    except LedgerError as exc:
        schema = exc.code.name
    try:
        t = decode_tx(raw)
        fast: tuple[Any, ...] | str = (1, t.chain_id, t.sender, t.nonce, t.fee, t.type, t.payload, t.signature)
    except LedgerError as exc:
        fast = exc.code.name
    if isinstance(schema, tuple) and schema[0] != 1:
        assert fast == errors.BAD_ENCODING.name  # only the hand-rolled parser knows the version
    elif isinstance(schema, tuple) or isinstance(fast, tuple):
        assert schema == fast
        assert decode_tx(raw).body + decode_tx(raw).signature == raw


@FAST
@given(raw=txs(), extra=st.binary(min_size=1, max_size=4), data=st.data())
def test_tx_malformations_have_their_own_codes(raw: bytes, extra: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert code_of(decode_tx, raw[:cut]) == code_of(_schema_decode, raw[:cut]) == errors.TRUNCATED.name
    assert code_of(decode_tx, raw + extra) == code_of(_schema_decode, raw + extra) == errors.TRAILING_BYTES.name
    clen = int.from_bytes(raw[1:5], "big")
    long_chain = raw[:1] + (MAX_CHAIN_ID + 1).to_bytes(4, "big") + raw[5:]
    assert code_of(decode_tx, long_chain) == code_of(_schema_decode, long_chain) == errors.OVERSIZED.name
    plen_at = 5 + clen + 50
    long_payload = raw[:plen_at] + (MAX_PAYLOAD + 1).to_bytes(4, "big") + raw[plen_at + 4:]
    assert code_of(decode_tx, long_payload) == code_of(_schema_decode, long_payload) == errors.OVERSIZED.name
    assert code_of(decode_tx, raw + bytes(MAX_TX_BYTES)) == errors.OVERSIZED.name


@FAST
@given(data=st.data())
def test_oversized_fields_are_refused_both_ways(data: st.DataObject) -> None:
    limit = data.draw(st.integers(0, 20))
    big = data.draw(st.binary(min_size=limit + 1, max_size=limit + 10))
    assert code_of(VarBytes(limit).encode, big) == errors.OVERSIZED.name
    assert code_of(VarBytes(limit).decode, len(big).to_bytes(4, "big") + big) == errors.OVERSIZED.name
    assert code_of(Text(limit).decode, len(big).to_bytes(4, "big") + big) == errors.OVERSIZED.name
    items = [0] * (limit + 1)
    assert code_of(ListOf(U8, limit).encode, items) == errors.OVERSIZED.name
    assert code_of(ListOf(U8, limit).decode, U32.encode(limit + 1) + bytes(limit + 1)) == errors.OVERSIZED.name
    deep = U32.encode(0) + U32.encode(1) + U32.encode(MAX_DEPTH + 1) + bytes(32 * (MAX_DEPTH + 1))
    assert code_of(MerkleProof.from_bytes, deep) == errors.OVERSIZED.name


@FAST
@given(raw=b20)
def test_address_round_trip(raw: bytes) -> None:
    text = encode_address(raw)
    assert text.startswith("al1") and len(text) == 41
    assert decode_address(text) == raw == decode_address(text.upper())


@settings(max_examples=1000, deadline=None)
@given(raw=b20, data=st.data())
def test_any_single_character_typo_is_rejected(raw: bytes, data: st.DataObject) -> None:
    text = encode_address(raw)
    i = data.draw(st.integers(0, len(text) - 1))
    c = data.draw(st.sampled_from(_CHARSET + "1"))
    assume(c != text[i])
    typo = text[:i] + c + text[i + 1:]
    assert code_of(decode_address, typo) == errors.BAD_ADDRESS.name


@FAST
@given(items=st.lists(st.binary(max_size=6), min_size=1, max_size=40), data=st.data())
def test_merkle_proofs_verify_every_leaf_and_only_it(items: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.from_data(items)
    root = tree.root()
    assert root == merkle_root(items)
    for i, item in enumerate(items):
        proof = tree.proof(i)
        assert verify_proof(root, item, proof)
        assert MerkleProof.from_bytes(proof.to_bytes()) == proof
        assert not verify_proof(root, item + b"\x00", proof)
    i = data.draw(st.integers(0, len(items) - 1))
    other = data.draw(st.binary(max_size=6))
    assume(other != items[i])
    assert not verify_proof(root, other, tree.proof(i))
    changed = [*items[:i], other, *items[i + 1:]]
    assert not verify_proof(merkle_root(changed), items[i], tree.proof(i))
    assert merkle_root([*items, b""]) != root  # the leaf count is committed too


ops = st.lists(st.one_of(
    st.tuples(st.just("append"), st.binary(max_size=4)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.binary(max_size=4)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("root")),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(start=st.lists(st.binary(max_size=4), max_size=20), steps=ops)
def test_incremental_tree_equals_scratch(start: list[bytes], steps: list[tuple[Any, ...]]) -> None:
    tree = MerkleTree.from_data(start)
    data = list(start)
    for step in steps:
        if step[0] == "append":
            tree.append(leaf_hash(step[1]))
            data.append(step[1])
        elif step[0] == "set" and data:
            i = step[1] % len(data)
            tree.set(i, leaf_hash(step[2]))
            data[i] = step[2]
        elif step[0] == "truncate":
            size = step[1] % (len(data) + 1)
            tree.truncate(size)
            del data[size:]
        elif step[0] == "root":
            assert tree.root() == merkle_root(data)
    assert tree.root() == merkle_root(data)
    assert len(tree) == len(data)
    for i in range(len(data)):
        assert verify_proof(tree.root(), data[i], tree.proof(i))


any_text = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=12)  # lone surrogates too


@FAST
@given(text=any_text, n=st.integers(-(2**70), 2**70))
def test_encoders_refuse_bad_values_only_with_ledger_errors(text: str, n: int) -> None:
    """Text with a lone surrogate or an integer out of range is refused by the encoder with a code."""
    cases: list[tuple[Codec[Any], Any]] = [(Text(12), text), (U8, n), (U32, n), (U64, n), (AMOUNT, n)]
    for codec, value in cases:
        try:
            raw = codec.encode(value)
        except LedgerError as exc:
            assert exc.code in (errors.BAD_ENCODING, errors.INT_RANGE, errors.OVERSIZED)
        else:
            assert codec.decode(raw) == value


_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                               any_text), lambda c: st.one_of(st.lists(c, max_size=3),
                                                              st.dictionaries(any_text, c, max_size=3)), max_leaves=6)
_GENESIS = {"chain_id": "x", "timestamp_ms": 0, "proposer": "00" * 32, "params": {"min_fee": 1},
            "allocations": [{"address": "al1wuc3aa59esrhvgjffw08ua3a5f4vzr6xl5sdgd", "balance": 5, "stake": 1}]}
_FIELDS = [("chain_id",), ("timestamp_ms",), ("proposer",), ("allocations",), ("params",), ("allocations", 0),
           ("allocations", 0, "address"), ("allocations", 0, "balance"), ("allocations", 0, "stake"),
           ("params", "min_fee")]


@settings(max_examples=600, deadline=None)
@given(where=st.sampled_from(_FIELDS), value=_JSON)
def test_genesis_documents_only_raise_bad_genesis(where: tuple[Any, ...], value: Any) -> None:
    """A genesis file is untrusted input too: any field replaced by any JSON gives bad_genesis or a genesis."""
    doc: Any = json.loads(json.dumps(_GENESIS))
    node = doc
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    try:
        g = Genesis.parse(json.dumps(doc))
    except LedgerError as exc:
        assert exc.code == errors.BAD_GENESIS
    else:
        assert Genesis.parse(g.canonical()) == g
