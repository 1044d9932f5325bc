"""What the trainer learns from: assistant-only labels of chat records, empty batches, the LR schedule."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory import schedule
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.data import IGNORE, Example, collate, encode, supervised
from ailedger.factory.tiny import build_tiny, build_tokenizer
from ailedger.factory.train import LEGACY, TrainSpec, train

TOKENIZER = build_tokenizer()
END = "<|im_end|>"
CHAT = {"messages": [{"role": "system", "content": "Answer briefly."},
                     {"role": "user", "content": "who is paid?"},
                     {"role": "assistant", "content": "every contributor"},
                     {"role": "user", "content": "and validators?"},
                     {"role": "assistant", "content": "those who vote with the outcome"}]}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> BaseModel:
    return load_base(build_tiny(tmp_path_factory.mktemp("base") / "tiny", seed=5))


def runs(e: Example) -> list[str]:
    """The supervised stretches of an example, decoded."""
    out: list[list[int]] = []
    previous = IGNORE
    for token, label in zip(e.ids, e.labels, strict=True):
        if label != IGNORE:
            assert label == token
            if previous == IGNORE:
                out.append([])
            out[-1].append(token)
        previous = label
    return [TOKENIZER.decode(r, clean_up_tokenization_spaces=False) for r in out]


def test_chat_labels_cover_the_assistant_turns_exactly() -> None:
    [e] = encode([CHAT], TOKENIZER, 512, "assistant")
    assert e.chat and e.assistant_only and not e.fallback
    assert runs(e) == ["every contributor" + END, "those who vote with the outcome" + END]
    # the pieces tokenize as the whole render does (ChatML edges are token edges), plus end-of-sequence
    full = TOKENIZER.apply_chat_template(CHAT["messages"], tokenize=False)
    assert e.ids == TOKENIZER(full, add_special_tokens=False)["input_ids"] + [TOKENIZER.eos_token_id]
    assert e.labels[-1] == IGNORE  # the end-of-sequence after the conversation is context
    unsupervised = TOKENIZER.decode([t for t, lab in zip(e.ids, e.labels, strict=True) if lab == IGNORE])
    assert "who is paid?" in unsupervised and "Answer briefly." in unsupervised and "every" not in unsupervised


def test_loss_on_all_and_plain_text_learn_every_token() -> None:
    [everything] = encode([CHAT], TOKENIZER, 512, "all")
    assert everything.labels == everything.ids and everything.chat and not everything.assistant_only
    [masked] = encode([CHAT], TOKENIZER, 512, "assistant")
    assert masked.ids == everything.ids  # the same tokens either way; only the labels differ
    for loss_on in ("assistant", "all"):
        [plain] = encode([{"text": "the ledger pays"}], TOKENIZER, 512, loss_on)
        assert plain.labels == plain.ids and not plain.chat and plain.supervised == len(plain.ids) - 1


def test_template_that_is_not_prefix_stable_falls_back_to_every_token() -> None:
    counting = build_tokenizer()  # a template that announces the number of turns changes its first line
    counting.chat_template = "{{ messages | length }} turns\n" + str(counting.chat_template)
    [e] = encode([CHAT], counting, 512, "assistant")
    assert e.fallback and not e.assistant_only and e.labels == e.ids
    no_template = build_tokenizer()
    no_template.chat_template = None
    [e] = encode([CHAT], no_template, 512, "assistant")
    assert e.fallback and e.labels == e.ids and TOKENIZER.decode(e.ids).startswith("system: Answer briefly.")


def test_truncation_keeps_labels_aligned() -> None:
    [whole] = encode([CHAT], TOKENIZER, 512, "assistant")
    first = whole.labels.index(next(lab for lab in whole.labels if lab != IGNORE))
    for cut in (first, first + 2, len(whole.ids) - 3):
        [e] = encode([CHAT], TOKENIZER, cut, "assistant")
        assert e.ids == whole.ids[:cut] and e.labels == whole.labels[:cut]
    [e] = encode([CHAT], TOKENIZER, first, "assistant")  # every assistant token cut away
    assert e.supervised == 0
    batch = collate([e, e], 0)
    assert supervised(batch) == 0 and (batch["labels"] == IGNORE).all()


def test_loss_gradient_is_zero_on_masked_positions(base: BaseModel) -> None:
    """The model's loss reads these labels: the logits that predict a masked token get no gradient."""
    [e] = encode([CHAT], base.tokenizer, 512, "assistant")
    batch = collate([e], 0)
    out = base.model(**batch)
    out.logits.retain_grad()
    out.loss.backward()
    grad = out.logits.grad[0].abs().sum(-1)  # position t-1 predicts token t
    learnt = torch.tensor([lab != IGNORE for lab in e.labels[1:]])
    assert (grad[:-1][~learnt] == 0).all() and (grad[:-1][learnt] > 0).all() and grad[-1] == 0
    base.model.zero_grad(set_to_none=True)


ROLES = st.sampled_from(["system", "user", "assistant"])
CONTENT = st.text(st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), max_size=24)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(ROLES, CONTENT), min_size=1, max_size=6))
def test_supervised_spans_are_exactly_the_assistant_contents(turns: list[tuple[str, str]]) -> None:
    messages = [{"role": role, "content": content} for role, content in turns]
    [e] = encode([{"messages": messages}], TOKENIZER, 10_000, "assistant")
    assert e.assistant_only and not e.fallback
    assert runs(e) == [content + END for role, content in turns if role == "assistant"]
    full = TOKENIZER.apply_chat_template(messages, tokenize=False)
    assert TOKENIZER.decode(e.ids[:-1], clean_up_tokenization_spaces=False) == full


def test_empty_batches_make_no_update_and_no_nan(base: BaseModel, tmp_path: Path) -> None:
    long_question = {"messages": [{"role": "user", "content": "who is paid? " * 40},
                                  {"role": "assistant", "content": "every contributor"}]}
    spec = TrainSpec(base="tiny", datanet="toy", version=1, snapshot_root="ab" * 32, rank=4, alpha=8, lr=2e-2,
                     epochs=2, batch_size=1, max_len=32, seed=3, checkpoint_every=100)
    result = train(spec, [long_question, {"text": "the ledger pays every contributor"}], base, tmp_path)
    loss = result.card["loss"]
    assert loss["unsupervised_records"] == 1 and loss["assistant_only_records"] == 1
    assert len(loss["empty_steps"]) == 2 and all(result.losses[i] == 0.0 for i in loss["empty_steps"])
    assert all(math.isfinite(x) for x in result.losses) and result.final_loss > 0
    with pytest.raises(LedgerError) as exc:
        train(spec, [long_question], base, tmp_path / "none")
    assert exc.value.code == errors.NO_TRAINING_RECORDS


def test_schedule_values() -> None:
    assert schedule.warmup_steps("cosine", None, 100) == 5 and schedule.warmup_steps("linear", None, 21) == 1
    assert schedule.warmup_steps("cosine", None, 20) == 0 and schedule.warmup_steps("constant", None, 100) == 0
    assert schedule.warmup_steps("constant", 7, 100) == 7 and schedule.warmup_steps("cosine", 50, 10) == 10

    def m(step: int, kind: str) -> float:
        return schedule.multiplier(step, kind, 100, 5, 0.1)

    for kind in schedule.SCHEDULES:
        assert [m(s, kind) for s in range(6)] == [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0]
    assert m(99, "constant") == 1.0
    assert m(99, "cosine") == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 94 / 95)))
    assert m(99, "linear") == pytest.approx(0.1 + 0.9 / 95) and m(52, "linear") == pytest.approx(0.55, abs=0.01)
    assert m(52, "cosine") == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 47 / 95)))
    cosine = [m(s, "cosine") for s in range(5, 100)]
    assert all(a > b for a, b in itertools.pairwise(cosine)) and min(cosine) > 0.1

    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([weight], lr=0.5)
    rates = schedule.scheduler(optimizer, "linear", 100, 5, 0.1)
    seen = []
    for _ in range(100):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        rates.step()
    assert seen == pytest.approx([0.5 * m(s, "linear") for s in range(100)], rel=1e-12)


def test_new_settings_in_the_spec_and_its_hash() -> None:
    spec = TrainSpec(base="b", datanet="d", version=1, snapshot_root="00" * 32)
    doc = json.loads(spec.to_json())
    assert {k: doc[k] for k in LEGACY} == {"schedule": "cosine", "warmup_steps": None, "min_lr_ratio": 0.1,
                                           "loss_on": "assistant"}
    assert TrainSpec.from_json(spec.to_json()) == spec
    for change in ({"schedule": "linear"}, {"warmup_steps": 3}, {"min_lr_ratio": 0.0}, {"loss_on": "all"}):
        other = dataclasses.replace(spec, **change)  # type: ignore[arg-type]
        assert other.hyperparams_hash() != spec.hyperparams_hash() and TrainSpec.from_json(other.to_json()) == other
    # a spec written before these settings existed reads as what it trained with, and hashes as it did
    old = json.dumps({k: v for k, v in doc.items() if k not in LEGACY}, sort_keys=True, separators=(",", ":"))
    legacy = TrainSpec.from_json(old)
    assert (legacy.schedule, legacy.warmup_steps, legacy.loss_on) == ("constant", None, "all")
    assert legacy.to_json() == old
    for bad in ({"schedule": "step"}, {"warmup_steps": -1}, {"min_lr_ratio": 1.5}, {"min_lr_ratio": float("nan")},
                {"loss_on": "user"}):
        with pytest.raises(LedgerError) as exc:
            dataclasses.replace(spec, **bad).validate()  # type: ignore[arg-type]
        assert exc.value.code == errors.BAD_TRAIN_SPEC and next(iter(bad)) in exc.value.detail
