"""Keystore files: round trip, and every kind of damage told apart from a wrong passphrase."""

from __future__ import annotations

import copy
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.core import keystore
from ailedger.core.address import encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.core.keystore import decrypt_key, doc_checksum, encrypt_key, keystore_info

OPS, MEM = keystore.COSTS["test"]
SEED = bytes(range(32))
PASS = "correct horse battery staple"


def sealed(seed: bytes = SEED, passphrase: str = PASS) -> dict[str, Any]:
    return encrypt_key(seed, passphrase, "alice", opslimit=OPS, memlimit=MEM)


def resealed(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with its checksum recomputed: damage that a careless tool (or an attacker) re-signs."""
    doc = dict(doc)
    doc["checksum"] = doc_checksum(doc)
    return doc


def code_of(doc: Any, passphrase: str = PASS) -> str:
    with pytest.raises(LedgerError) as info:
        decrypt_key(doc, passphrase)
    return info.value.code.name


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return sealed()


def test_round_trip_and_public_fields(doc: dict[str, Any]) -> None:
    key = KeyPair.from_seed(SEED)
    assert decrypt_key(copy.deepcopy(doc), PASS) == SEED
    assert doc["address"] == key.address_text and doc["public_key"] == key.public_key.hex()
    assert doc["kdf"] == "argon2id" and doc["kdfparams"]["opslimit"] == OPS
    assert SEED.hex() not in str(doc)
    info = keystore_info(doc)
    assert (info.name, info.address, info.public_key) == ("alice", key.address_text, key.public_key)


def test_default_cost_is_stored_and_unlocks() -> None:
    doc = encrypt_key(SEED, PASS, "slow")
    assert (doc["kdfparams"]["opslimit"], doc["kdfparams"]["memlimit"]) == keystore.COSTS["default"]
    assert decrypt_key(doc, PASS) == SEED


def test_fresh_salt_and_nonce_each_time() -> None:
    a, b = sealed(), sealed()
    assert a["kdfparams"]["salt"] != b["kdfparams"]["salt"] and a["nonce"] != b["nonce"]
    assert a["ciphertext"] != b["ciphertext"]


def test_unicode_passphrase_is_normalised() -> None:
    doc = sealed(passphrase=unicodedata.normalize("NFC", "pässwörd"))
    assert decrypt_key(doc, unicodedata.normalize("NFD", "pässwörd")) == SEED


@pytest.mark.parametrize("passphrase", ["", "correct horse battery stapl", PASS + " ", PASS.upper()])
def test_wrong_passphrase(doc: dict[str, Any], passphrase: str) -> None:
    assert code_of(doc, passphrase) == "wrong_passphrase"


@pytest.mark.parametrize("field", ["version", "name", "address", "public_key", "kdf", "kdfparams", "cipher", "nonce",
                                   "ciphertext", "check", "checksum"])
def test_missing_field_is_corrupt(doc: dict[str, Any], field: str) -> None:
    damaged = {k: v for k, v in doc.items() if k != field}
    assert code_of(damaged) == "keystore_corrupt"
    if field != "checksum":  # resealing would just put the checksum back
        assert code_of(resealed(damaged)) == "keystore_corrupt"


def _flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


@pytest.mark.parametrize("field", ["nonce", "ciphertext", "check", "public_key"])
def test_damaged_field_is_corrupt_not_wrong_passphrase(doc: dict[str, Any], field: str) -> None:
    damaged = {**doc, field: _flip_hex(doc[field])}
    assert code_of(damaged) == "keystore_corrupt"


def test_damaged_salt_is_corrupt(doc: dict[str, Any]) -> None:
    params = {**doc["kdfparams"], "salt": _flip_hex(doc["kdfparams"]["salt"])}
    assert code_of({**doc, "kdfparams": params}) == "keystore_corrupt"


@pytest.mark.parametrize("mutate", [
    lambda d: {**d, "ciphertext": "zz" + d["ciphertext"][2:]},           # not hex
    lambda d: {**d, "ciphertext": d["ciphertext"][:-2]},                 # too short
    lambda d: {**d, "nonce": d["nonce"] + "00"},                         # too long
    lambda d: {**d, "check": 12},                                        # wrong type
    lambda d: {**d, "version": 2},
    lambda d: {**d, "kdf": "scrypt"},
    lambda d: {**d, "extra": "field"},
    lambda d: {**d, "kdfparams": {**d["kdfparams"], "memlimit": 1 << 40}},  # would exhaust memory
    lambda d: {**d, "kdfparams": {**d["kdfparams"], "opslimit": 0}},
    lambda d: {**d, "kdfparams": {**d["kdfparams"], "opslimit": True}},
    lambda d: {**d, "kdfparams": "argon2id"},
    lambda d: {**d, "address": d["address"][:-1] + ("q" if d["address"][-1] != "q" else "p")},
], ids=["bad-hex", "short", "long", "type", "version", "kdf", "extra", "memlimit", "opslimit", "bool", "params",
        "address"])
def test_malformed_fields_are_corrupt_even_if_resealed(doc: dict[str, Any], mutate: Any) -> None:
    assert code_of(resealed(mutate(doc))) == "keystore_corrupt"


@pytest.mark.parametrize("value", [None, [], "text", 3, {}])
def test_not_a_keystore(value: Any) -> None:
    assert code_of(value) == "keystore_corrupt"
    with pytest.raises(LedgerError, match="keystore_corrupt"):
        keystore_info(value)


def test_swapped_public_key_is_caught_after_decryption(doc: dict[str, Any]) -> None:
    """A re-signed file naming another key decrypts, but its seed does not give that key."""
    other = KeyPair.from_seed(bytes(32))
    forged = resealed({**doc, "public_key": other.public_key.hex(), "address": encode_address(other.address)})
    assert code_of(forged) == "keystore_corrupt"


def test_encrypt_refuses_bad_inputs() -> None:
    with pytest.raises(ValueError):
        encrypt_key(b"short", PASS, "x", opslimit=OPS, memlimit=MEM)
    with pytest.raises(ValueError):
        encrypt_key(SEED, PASS, "x", opslimit=0, memlimit=MEM)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_ciphertext_mutation_is_never_accepted(doc: dict[str, Any], data: st.DataObject) -> None:
    raw = bytearray.fromhex(doc["ciphertext"])
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "replace"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "extend":
        raw += data.draw(st.binary(min_size=1, max_size=16))
    else:
        new = data.draw(st.binary(min_size=len(raw), max_size=len(raw)))
        if bytes(new) == bytes(raw):
            return
        raw = bytearray(new)
    damaged = {**doc, "ciphertext": raw.hex()}
    for candidate in (damaged, resealed(damaged)):
        assert code_of(candidate) == "keystore_corrupt"
