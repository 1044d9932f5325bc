"""Training data: Datanet records turned into token sequences, a seeded order, padded batches.

The order of batches is a pure function of (seed, step): epoch `e` shuffles the records with a
generator seeded from (seed, e), and step `s` takes the `s mod steps_per_epoch`-th slice of it. So
the data cursor of a checkpoint is just its step, and a resumed run sees exactly the batches the
uninterrupted run would have seen.

What the loss looks at is decided here too: each example carries labels beside its ids, `IGNORE`
where the loss skips a token. Plain-text records learn every token; chat records learn only the
assistant's turns (`chat.py`) unless the spec says `loss_on="all"`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.export import Progress, export_version, verify_export
from ailedger.datanet.remote import DatanetBackend
from ailedger.factory.chat import assistant_spans, pieces, render, turns_of

IGNORE = -100  # label value the loss skips (padding, and the turns a chat record is told rather than taught)
TEXT_KEYS = ("text", "content", "body")
LOSS_ON = ("assistant", "all")


@dataclass(frozen=True)
class Example:
    """One record as the trainer sees it: token ids and the labels the loss compares them with."""

    ids: list[int]
    labels: list[int]  # ids, or IGNORE where the loss skips the token
    chat: bool = False  # the record is a conversation (`messages`)
    assistant_only: bool = False  # its labels cover the assistant's turns only
    fallback: bool = False  # assistant-only was asked for, but the template is not prefix-stable: all tokens learnt

    @property
    def supervised(self) -> int:
        """Tokens the loss looks at (the first never is: nothing predicts it)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE)


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


def exported_snapshot(backend: DatanetBackend, datanet: str, version: int, data_dir: Path,
                      on_stage: Progress | None = None) -> tuple[str, list[dict[str, Any]]]:
    """A Datanet version's records, from `data_dir/NAME-vN.jsonl` when it still hashes to the ledger's root,
    else exported there from the node first; returns (root, records).

    Training writes the snapshot into the adapter directory this way, and the attribution index reads
    the same file, so both see exactly the records the ledger froze.
    """
    doc = backend.datanet_version(datanet, version, 0, 1)  # version_not_found before anything else
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{datanet}-v{version}.jsonl"
    try:
        return str(doc["root"]), read_snapshot(path, doc["root"])
    except LedgerError:  # absent, unreadable or stale: export it again
        export_version(datanet, version, backend, path, on_stage)
    return str(doc["root"]), read_snapshot(path, doc["root"])


def record_text(record: dict[str, Any], tokenizer: PreTrainedTokenizerBase | None = None) -> str:
    """The text a record trains on: chat messages through the chat template, else its text fields.

    Without a tokenizer (retrieval indexes and quotes records, it does not train on them) chat
    messages read as `role: content` lines.
    """
    messages = record.get("messages")
    if isinstance(messages, list) and messages:
        turns = turns_of(messages)
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            rendered = render(tokenizer, turns)
            if rendered is not None:
                return rendered
        return "\n".join(f"{t['role']}: {t['content']}" for t in turns)
    for key in TEXT_KEYS:
        if isinstance(record.get(key), str):
            return str(record[key])
    return "\n".join(v for v in record.values() if isinstance(v, str))


def encode(records: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, max_len: int,
           loss_on: str = "all") -> list[Example]:
    """Examples per record (end-of-sequence appended, cut at `max_len`); records without text are skipped.

    With `loss_on="assistant"` a chat record's labels cover its assistant turns only: the rendered
    conversation is tokenized piece by piece at the span edges, so labels and ids stay aligned
    exactly (and where an edge falls between two tokens anyway, as it does for ChatML templates, the
    ids are those of the whole text). Its end-of-sequence token is context, not taught: the
    template's end-of-turn marker already teaches the model to stop. Cutting at `max_len` cuts ids
    and labels together; a record whose assistant tokens are all cut away teaches nothing.
    """
    eos = tokenizer.eos_token_id
    tail = [eos] if isinstance(eos, int) else []
    out = []
    for record in records:
        messages = record.get("messages")
        turns = turns_of(messages) if isinstance(messages, list) else []
        chat = bool(turns)
        found = None
        if chat and loss_on == "assistant" and getattr(tokenizer, "chat_template", None):
            found = assistant_spans(tokenizer, turns)
        if found is not None:
            ids, labels = [], []
            for text, learn in pieces(*found):
                part = _ids(tokenizer, text)
                ids += part
                labels += part if learn else [IGNORE] * len(part)
            ids, labels = ids + tail, labels + [IGNORE] * len(tail)
        else:
            text = record_text(record, tokenizer)
            if not text.strip():
                continue
            ids = _ids(tokenizer, text) + tail
            labels = list(ids)
        out.append(Example(ids[:max_len], labels[:max_len], chat, found is not None,
                           chat and loss_on == "assistant" and found is None))
    return out


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


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


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask, and the examples' labels with the padding masked out of the loss."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(examples):
        ids[row, :len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
        mask[row, :len(e.ids)] = 1
        labels[row, :len(e.labels)] = torch.tensor(e.labels, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def supervised(batch: dict[str, torch.Tensor]) -> int:
    """Tokens of a batch the loss looks at; with none, the mean loss is 0/0 and the step must be skipped."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())
