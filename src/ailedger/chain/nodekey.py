"""The node's proposer key: `node_key.json` in the data directory, readable by its owner only.

Why a plaintext file (like Tendermint's `priv_validator_key.json`): a block producer must sign
unattended after every restart, so its key cannot wait for a passphrase. The file is created with
mode 0600 and replaced atomically, so a crash while writing never leaves half a key behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair

NODE_KEY_FILE = "node_key.json"


def node_key_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / NODE_KEY_FILE


def write_node_key(data_dir: Path | str, key: KeyPair) -> Path:
    """Write the key file (mode 0600); refuses to overwrite an existing one."""
    path = node_key_path(data_dir)
    if path.exists():
        raise LedgerError(errors.KEY_EXISTS, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"type": "ed25519", "seed": key.seed.hex(), "public_key": key.public_key.hex(),
           "address": key.address_text}
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_node_key(data_dir: Path | str) -> KeyPair | None:
    """The key in `node_key.json`, or None if the directory has none (the node then only serves reads)."""
    path = node_key_path(data_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
        seed = bytes.fromhex(doc["seed"])
        if len(seed) != 32:
            raise ValueError("the seed is not 32 bytes")
        key = KeyPair.from_seed(seed)
        if "public_key" in doc and bytes.fromhex(doc["public_key"]) != key.public_key:
            raise ValueError("the public key does not belong to the seed")
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerError(errors.KEYSTORE_CORRUPT, f"{path}: {exc}") from exc
    return key
