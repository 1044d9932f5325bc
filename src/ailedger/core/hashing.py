"""SHA-256 with domain separation.

Why SHA-256: it is what an EVM contract can check cheaply (precompile 0x02), so state roots anchored
on an EVM chain stay verifiable there. Each use gets its own one-byte or text tag so that a leaf can
never be confused with an inner node, nor a transaction with a block header.
"""

from __future__ import annotations

import hashlib
import json

_sha256 = hashlib.sha256

LEAF = b"\x00"
NODE = b"\x01"


def sha256(data: bytes) -> bytes:
    return _sha256(data).digest()


def tagged(tag: bytes, data: bytes) -> bytes:
    """Hash `data` under a domain tag: H(len(tag) || tag || data)."""
    return _sha256(bytes((len(tag),)) + tag + data).digest()


def leaf_hash(data: bytes) -> bytes:
    return _sha256(LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(NODE + left + right).digest()


def canonical_json(doc: object) -> bytes:
    """The one canonical JSON form that hashes are taken over: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
