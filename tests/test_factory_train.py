"""ModelFactory end to end on the tiny model: train, checkpoint, interrupt and resume, adapters refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.adapters import inspect_adapter, load_adapter, validate_adapter
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.tiny import build_tiny
from ailedger.factory.train import TrainResult, TrainSpec, adapter_hash, train

SENTENCE = "the ledger pays every contributor of every record"
RECORDS = ([{"text": SENTENCE}] * 10
           + [{"messages": [{"role": "user", "content": "who is paid?"},
                            {"role": "assistant", "content": "every contributor of every record"}]}] * 6)
SPEC = TrainSpec(base="tiny", datanet="toy", version=1, snapshot_root="ab" * 32, rank=4, alpha=8, dropout=0.1,
                 lr=2e-2, epochs=8, batch_size=4, max_len=48, seed=11, checkpoint_every=8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("base") / "tiny", seed=5)


@pytest.fixture(scope="module")
def trained(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(SPEC, RECORDS, load_base(tiny), tmp_path_factory.mktemp("run") / "adapter")


def _greedy(base: BaseModel, model: torch.nn.Module, prompt: str, n: int = 8) -> list[int]:
    ids = base.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False)
    return [int(t) for t in out[0, ids.shape[1]:]]


def test_training_writes_adapter_card_and_checkpoints(trained: TrainResult, tiny: Path) -> None:
    out = trained.out_dir
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    card = json.loads((out / "model_card.json").read_text())
    assert card == json.loads(json.dumps(trained.card))
    assert card["adapter_hash"] == adapter_hash(out) == trained.adapter_hash
    assert card["base"]["weights_hash"] == load_base(tiny).info.weights_hash
    assert card["datanet"] == {"name": "toy", "version": 1, "root": "ab" * 32}
    assert card["hyperparams_hash"] == SPEC.hyperparams_hash()
    assert card["steps"] == 8 * 4 == trained.steps  # 16 records, batches of 4, 8 epochs
    assert card["checkpoints"] == ["step-000008", "step-000016", "step-000024", "step-000032"]
    for name in card["checkpoints"]:
        ckpt = out / "checkpoints" / name
        assert {p.name for p in ckpt.iterdir()} == {"adapter_model.safetensors", "adapter_config.json",
                                                    "optimizer.pt", "scheduler.pt", "rng.pt", "state.json"}
    # cosine by default, 5% warm-up (2 of 32 steps), decaying towards a tenth of the rate
    sched = card["schedule"]
    assert {k: sched[k] for k in ("kind", "warmup_steps", "total_steps", "min_lr_ratio")} == {
        "kind": "cosine", "warmup_steps": 2, "total_steps": 32, "min_lr_ratio": 0.1}
    assert sched["lrs"][:3] == pytest.approx([2e-2 / 3, 2e-2 * 2 / 3, 2e-2]) and len(sched["lrs"]) == 32
    assert 2e-3 < sched["lrs"][-1] < 2.1e-3
    # the 6 chat records learn only their assistant turns; the 10 plain ones every token
    assert card["loss"] == {
        "loss_on": "assistant", "chat_records": 6, "assistant_only_records": 6, "whole_sequence_fallback_records": 0,
        "unsupervised_records": 0, "supervised_tokens": card["loss"]["supervised_tokens"], "empty_steps": []}
    assert card["hyperparams"]["schedule"] == "cosine" and card["hyperparams"]["loss_on"] == "assistant"
    assert "weights hash" in (out / "README.md").read_text()
    first, last = sum(trained.losses[:4]) / 4, trained.final_loss
    assert last < 0.6 * first, (first, last)  # the repetitive corpus is being learnt


def test_spec_json_and_hash() -> None:
    assert TrainSpec.from_json(SPEC.to_json()) == SPEC
    assert dataclasses.replace(SPEC, lr=1e-3).hyperparams_hash() != SPEC.hyperparams_hash()
    for bad in ({"rank": 0}, {"dropout": 1.0}, {"lr": float("nan")}, {"batch_size": 0}, {"target_modules": ()}):
        with pytest.raises(LedgerError) as exc:
            dataclasses.replace(SPEC, **bad).validate()  # type: ignore[arg-type]
        assert exc.value.code == errors.BAD_TRAIN_SPEC


def test_interrupt_then_resume_is_bit_identical(trained: TrainResult, tiny: Path, tmp_path: Path) -> None:
    base = load_base(tiny)

    def interrupt_at_13(step: int, total: int, loss: float) -> None:
        if step == 13:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: honoured after the step, never inside one

    with pytest.raises(LedgerError) as exc:
        train(SPEC, RECORDS, base, tmp_path, on_step=interrupt_at_13)
    assert exc.value.code == errors.INTERRUPTED
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-000008", "step-000013"]
    assert not (tmp_path / "model_card.json").exists()
    assert torch.load(tmp_path / "checkpoints" / "step-000013" / "scheduler.pt")["last_epoch"] == 13
    # the same checkpoints without the schedule's state (as written before schedules existed)
    older = Path(shutil.copytree(tmp_path, tmp_path.parent / f"{tmp_path.name}-older"))
    for ckpt in (older / "checkpoints").iterdir():
        (ckpt / "scheduler.pt").unlink()
    resumed = train(SPEC, RECORDS, base, tmp_path)
    assert resumed.losses == trained.losses
    assert resumed.card["schedule"]["lrs"] == trained.card["schedule"]["lrs"]  # mid-decay, not restarted
    assert resumed.adapter_hash == trained.adapter_hash
    assert train(SPEC, RECORDS, base, older).adapter_hash == trained.adapter_hash  # set to its step instead
    with pytest.raises(LedgerError) as exc:  # the same directory with other settings is not resumed
        train(dataclasses.replace(SPEC, lr=1e-3), RECORDS, base, tmp_path)
    assert exc.value.code == errors.CHECKPOINT_MISMATCH


def test_adapter_changes_greedy_output(trained: TrainResult, tiny: Path) -> None:
    base = load_base(tiny)
    prompt = "the ledger pays"
    before = _greedy(base, base.model, prompt)
    model = load_adapter(base, trained.out_dir)
    after = _greedy(base, model, prompt)
    assert after != before
    # and it now continues the corpus sentence
    assert base.tokenizer.decode(after).startswith(" every contributor"), base.tokenizer.decode(after)


def test_no_text_records_are_refused(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(LedgerError) as exc:
        train(SPEC, [{"score": 3}, {"text": "  "}], load_base(tiny), tmp_path)
    assert exc.value.code == errors.NO_TRAINING_RECORDS


def _copy(trained: TrainResult, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained.out_dir, tmp_path / "copy", ignore=shutil.ignore_patterns("checkpoints")))


def test_truncated_adapter_refused(trained: TrainResult, tiny: Path, tmp_path: Path) -> None:
    d = _copy(trained, tmp_path)
    data = (d / "adapter_model.safetensors").read_bytes()
    (d / "adapter_model.safetensors").write_bytes(data[:-100])
    with pytest.raises(LedgerError) as exc:
        validate_adapter(d, load_base(tiny).info)
    assert exc.value.code == errors.WEIGHTS_TRUNCATED


def test_corrupted_adapter_refused(trained: TrainResult, tmp_path: Path) -> None:
    d = _copy(trained, tmp_path)
    data = bytearray((d / "adapter_model.safetensors").read_bytes())
    data[-7] ^= 0x40  # one bit of one weight
    (d / "adapter_model.safetensors").write_bytes(bytes(data))
    with pytest.raises(LedgerError) as exc:
        inspect_adapter(d)
    assert exc.value.code == errors.WEIGHTS_CORRUPT
    data[10] = ord("}")  # the header no longer parses
    (d / "adapter_model.safetensors").write_bytes(bytes(data))
    with pytest.raises(LedgerError) as exc:
        inspect_adapter(d)
    assert exc.value.code == errors.WEIGHTS_CORRUPT
    (d / "model_card.json").unlink()
    with pytest.raises(LedgerError) as exc:
        inspect_adapter(d)
    assert exc.value.code == errors.ADAPTER_INVALID


def test_adapter_for_another_base_refused(trained: TrainResult, tmp_path: Path) -> None:
    other = load_base(build_tiny(tmp_path / "other", seed=6, hidden=32, heads=2, kv_heads=1))
    with pytest.raises(LedgerError) as exc:
        validate_adapter(trained.out_dir, other.info)
    assert exc.value.code == errors.ADAPTER_BASE_MISMATCH
    # a card forged to name the other base still fails: its matrices do not fit that base's layers
    d = _copy(trained, tmp_path)
    card = json.loads((d / "model_card.json").read_text())
    card["base"]["weights_hash"] = other.info.weights_hash
    (d / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(LedgerError) as exc:
        load_adapter(other, d)
    assert exc.value.code == errors.ADAPTER_SHAPE_MISMATCH


def test_snapshot_file_is_checked_against_its_root(tmp_path: Path) -> None:
    from ailedger.core.merkle import merkle_root
    from ailedger.factory.data import read_snapshot

    lines = [json.dumps(r, sort_keys=True, separators=(",", ":")).encode() for r in RECORDS[:3]]
    root = merkle_root([hashlib.sha256(line).digest() for line in lines]).hex()
    path = tmp_path / "toy.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert read_snapshot(path, root) == RECORDS[:3]
    path.write_bytes(b"\n".join(lines[:2]) + b"\n")
    with pytest.raises(LedgerError) as exc:
        read_snapshot(path, root)
    assert exc.value.code == errors.EXPORT_MISMATCH
