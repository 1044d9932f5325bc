"""The blob store: content addressing, dedup, re-hash on every read, reopen after close."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.api.client import HttpClient
from ailedger.chain.blobstore import BlobStore
from ailedger.chain.node import Node
from ailedger.core.errors import LedgerError
from tests.conftest_api import serve_in_thread


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=40))
def test_put_get_round_trip(tmp_path_factory: pytest.TempPathFactory, blobs: list[bytes]) -> None:
    store = BlobStore(tmp_path_factory.mktemp("blobs"))
    hashes = store.put_many(blobs)
    assert hashes == [hashlib.sha256(b).digest() for b in blobs]
    assert len(store) == len(set(blobs))
    for h, b in zip(hashes, blobs, strict=True):
        assert store.has(h) and store.get(h) == b
    store.close()


def test_damage_is_detected_and_reopen_keeps_everything(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    a, b = store.put_many([b"alpha record", b"beta record"])
    store.close()
    store = BlobStore(tmp_path)
    assert store.get(a) == b"alpha record"
    pack = next(tmp_path.glob("pack-*.dat"))
    data = bytearray(pack.read_bytes())
    data[data.index(b"beta")] ^= 0x20
    pack.write_bytes(bytes(data))
    with pytest.raises(LedgerError) as info:
        store.get(b)
    assert info.value.code.name == "blob_corrupt"
    with pytest.raises(LedgerError) as info:
        store.get(bytes(32))
    assert info.value.code.name == "blob_not_found"
    store.close()


def test_tail_bytes_from_a_crash_are_skipped(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.put(b"first")
    pack = next(tmp_path.glob("pack-*.dat"))
    with open(pack, "ab") as f:
        f.write(b"half-written garbage never indexed")
    h = store.put(b"second")
    assert store.get(h) == b"second" and len(store) == 2
    store.close()


def test_blobs_over_http(node: Node) -> None:
    """The node hosts the blob store; the client re-checks every hash it is given."""
    with serve_in_thread(node) as url, HttpClient(url) as client:
        blobs = [b"record %d" % i for i in range(300)] + [b"x" * 100_000] * 5
        hashes = client.put_blobs(blobs, max_request_bytes=50_000)
        assert hashes == [hashlib.sha256(b).hexdigest() for b in blobs]
        assert client.get_blob(hashes[7]) == b"record 7"
        with pytest.raises(LedgerError) as info:
            client.get_blob("00" * 32)
        assert info.value.code.name == "blob_not_found"
        with pytest.raises(LedgerError) as info:
            client.get_blob("zz")
        assert info.value.code.name == "bad_hex"
