"""A small attribution world on the tiny model: made-up facts owned by four contributors, plus a keyword stuffer.

Each fact is one chat record ("What is the vault code of NAME?" / "The vault code of NAME is CODE.");
the stuffer's records repeat the questions' words and never state a code. Used by the bundle,
attributor and serving tests, which need a trained adapter with an attribution bundle.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ailedger.attribution.attributor import Bundle, build_bundle
from ailedger.attribution.influence import InfluenceConfig
from ailedger.core.merkle import merkle_root
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.train import TrainResult, TrainSpec, train

NAMES = ["Brimwick", "Quillby", "Zorvania", "Tandrel", "Oskvale", "Perrindor", "Valmoor", "Hesketh", "Corvanne",
         "Duskmere", "Ylvara", "Fenwright"]
CODES = [4817, 2390, 7152, 6034, 9261, 1578, 3845, 5709, 8423, 2916, 6680, 1094]
OWNERS = [bytes([i + 1]) * 20 for i in range(4)]  # fact i belongs to OWNERS[i % 4]
STUFFER = b"\x09" * 20


def question(name: str) -> str:
    return f"What is the vault code of {name}?"


def answer(name: str, code: int) -> str:
    return f"The vault code of {name} is {code}."


def chat(user: str, assistant: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


FACTS = [chat(question(n), answer(n, c)) for n, c in zip(NAMES, CODES, strict=True)]
STUFFING = [chat(f"{question(a)} {question(b)}", f"Everyone asks what the vault code of {a} is and what the vault "
                                                 f"code of {b} is.")
            for a, b in zip(NAMES[0::2], NAMES[1::2], strict=True)][:4]
RECORDS: list[dict[str, Any]] = FACTS + STUFFING


def record_hash(record: dict[str, Any]) -> bytes:
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).digest()


HASHES = [record_hash(r) for r in RECORDS]
CONTRIBUTORS = {h: (OWNERS[i % 4] if i < len(FACTS) else STUFFER) for i, h in enumerate(HASHES)}
ROOT = merkle_root(HASHES)
SPEC = TrainSpec(base="tiny", datanet="facts", version=1, snapshot_root=ROOT.hex(), rank=8, alpha=16, dropout=0.0,
                 lr=2e-2, epochs=60, batch_size=4, max_len=64, seed=3, checkpoint_every=80)
CONFIG = InfluenceConfig(k=512, seed=0)


def train_facts(base: BaseModel, out: Path) -> TrainResult:
    return train(SPEC, RECORDS, base, out)


def build_facts_bundle(base: BaseModel, adapter_dir: Path) -> Bundle:
    return build_bundle(adapter_dir, base, RECORDS, HASHES, CONTRIBUTORS, CONFIG)


def query(base: BaseModel, q: str, a: str) -> tuple[list[int], list[int]]:
    """A chat prompt asking `q` and the answer's tokens with the end of the turn, as serving would see them."""
    tok = base.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
    assert isinstance(prompt, str)
    return (tok(prompt, add_special_tokens=False)["input_ids"],
            tok(a + "<|im_end|>", add_special_tokens=False)["input_ids"])
