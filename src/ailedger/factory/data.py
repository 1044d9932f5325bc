"""Training data: Datanet records turned into token sequences, a seeded order, padded batches.

The order of batches is a pure function of (seed, step): epoch `e` shuffles the records with a
generator seeded from (seed, e), and step `s` takes the `s mod steps_per_epoch`-th slice of it. So
the data cursor of a checkpoint is just its step, and a resumed run sees exactly the batches the
uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.export import verify_export

IGNORE = -100  # label value the loss skips (padding)
TEXT_KEYS = ("text", "content", "body")


def read_snapshot(path: Path | str, root_hex: str) -> list[dict[str, Any]]:
    """The records of an exported Datanet version (`datanet export`), after re-checking its Merkle root.

    Training trusts no copy: the file's lines must hash to the root the ledger froze, the root the
    adapter's card will name.
    """
    try:
        ok = verify_export(path, root_hex)
        lines = Path(path).read_bytes().splitlines()
    except OSError as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc}") from exc
    if not ok:
        raise LedgerError(errors.EXPORT_MISMATCH, f"{path} does not hash to root {root_hex}")
    records = [json.loads(line) for line in lines]
    if not all(isinstance(r, dict) for r in records):
        raise LedgerError(errors.NO_TRAINING_RECORDS, f"{path}: a line is not a JSON object")
    return records


def record_text(record: dict[str, Any], tokenizer: PreTrainedTokenizerBase | None = None) -> str:
    """The text a record trains on: chat messages through the chat template, else its text fields.

    Without a tokenizer (retrieval indexes and quotes records, it does not train on them) chat
    messages read as `role: content` lines.
    """
    messages = record.get("messages")
    if isinstance(messages, list) and messages:
        turns = [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
                 for m in messages if isinstance(m, dict)]
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            rendered = tokenizer.apply_chat_template(turns, tokenize=False)
            if isinstance(rendered, str):
                return rendered
        return "\n".join(f"{t['role']}: {t['content']}" for t in turns)
    for key in TEXT_KEYS:
        if isinstance(record.get(key), str):
            return str(record[key])
    return "\n".join(v for v in record.values() if isinstance(v, str))


def encode(records: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, max_len: int) -> list[list[int]]:
    """Token ids per record (end-of-sequence appended, cut at `max_len`); records without text are skipped."""
    eos = tokenizer.eos_token_id
    out = []
    for record in records:
        text = record_text(record, tokenizer)
        if not text.strip():
            continue
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if isinstance(eos, int):
            ids.append(eos)
        out.append([int(i) for i in ids[:max_len]])
    return out


def records_hash(records: Sequence[dict[str, Any]]) -> str:
    """SHA-256 over the records' canonical JSON, in order: what a checkpoint was trained on."""
    h = hashlib.sha256()
    for r in records:
        h.update(hashlib.sha256(json.dumps(r, sort_keys=True, separators=(",", ":")).encode()).digest())
    return h.hexdigest()


class Order:
    """Which records step `s` trains on, for a given seed."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.steps_per_epoch = -(-n // batch_size)
        self._perm: tuple[int, list[int]] | None = None

    def batch(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, [int(x) for x in torch.randperm(self.n, generator=g)])
        return self._perm[1][i * self.batch_size:(i + 1) * self.batch_size]


def collate(seqs: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask, and labels with the padding masked out of the loss."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[row, :len(s)] = 1
    labels = ids.masked_fill(mask == 0, IGNORE)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
