"""The scheduler room on the tiny model: the engine computes what PEFT computes, whoever shares the batch."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.serving.engine import Engine, Generation, Request
from ailedger.serving.sampling import SamplingParams
from tests.test_serving_lora import adapter_dirs, peft_model, served, tiny_dir

__all__ = ["adapter_dirs", "tiny_dir"]  # session fixtures shared with the LoRA tests

PROMPTS = ["The ledger records", "A datanet is a versioned", "hello", "Validators review records and vote",
           "The quick brown fox", "Every fee is split", "user question", "Contributors are paid when models"]
ADAPTERS: list[str | None] = ["a0", None, "a2", "a1", "a3", "a5", "a0", "a4"]
EOS = 0


def make_engine(tiny_dir: Path, adapter_dirs: dict[str, Path], max_batch: int = 16) -> tuple[Engine, list[list[int]]]:
    base, slots, cache = served(tiny_dir, adapter_dirs)
    prompts = [list(base.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in PROMPTS]
    engine = Engine(base.model, slots, cache, decode=lambda ids: base.tokenizer.decode(ids), max_batch=max_batch)
    return engine, prompts


def test_mixed_batch_greedy_equals_peft_generate(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    engine, prompts = make_engine(tiny_dir, adapter_dirs)
    gens = engine.generate([Request(p, 16, a, stop_ids=frozenset({EOS}))
                            for p, a in zip(prompts, ADAPTERS, strict=True)])
    reference = peft_model(tiny_dir, adapter_dirs)
    n = max(len(p) for p in prompts)
    ids = torch.tensor([[EOS] * (n - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (n - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        out = reference.generate(input_ids=ids, attention_mask=mask, max_new_tokens=16, do_sample=False,
                                 adapter_names=[a or "__base__" for a in ADAPTERS], pad_token_id=EOS)
    for row, gen in enumerate(gens):
        want = out[row, n:].tolist()
        if EOS in want:
            want = want[: want.index(EOS) + 1]
        assert gen.tokens == want, (row, ADAPTERS[row])
        assert gen.finish_reason == ("stop" if want[-1] == EOS else "length")
        assert gen.usage.prompt_tokens == len(prompts[row]) and gen.usage.completion_tokens == len(want)
    by_adapter = {ADAPTERS[i]: gens[i].tokens for i in (0, 1)}
    assert by_adapter["a0"] != by_adapter[None]


def test_continuous_batching_matches_running_alone(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    engine, prompts = make_engine(tiny_dir, adapter_dirs, max_batch=4)
    lengths = [12, 5, 9, 14, 3, 10, 7, 11]
    alone = [engine.generate([Request(p, n, a)])[0].tokens for p, n, a in zip(prompts, lengths, ADAPTERS, strict=True)]
    arrivals = {0: [0, 1], 2: [2], 3: [3, 4, 5], 7: [6], 8: [7]}  # step -> requests arriving then
    gens: dict[int, Generation] = {}
    step = 0
    while step <= max(arrivals) or engine.has_work():
        for i in arrivals.get(step, []):
            gens[i] = engine.submit(Request(prompts[i], lengths[i], ADAPTERS[i]))
        engine.step()
        assert len(engine.running) <= 4 and engine.kv.rows == len(engine.running)
        step += 1
    assert [gens[i].tokens for i in range(len(prompts))] == alone
    assert engine.kv.cache is None  # every row left, nothing is kept


def test_seeded_sampling_is_reproducible(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    engine, prompts = make_engine(tiny_dir, adapter_dirs)

    def run(seed: int, others: int) -> list[int]:
        req = Request(prompts[0], 12, "a0", SamplingParams(temperature=0.9, top_p=0.9, seed=seed))
        noise = [Request(p, 6, a, SamplingParams(temperature=1.0)) for p, a in zip(prompts[1:others + 1],
                                                                                   ADAPTERS[1:], strict=False)]
        return engine.generate([req, *noise])[0].tokens

    first = run(7, 0)
    assert run(7, 0) == first == run(7, 5)  # same seed, same tokens, alone or in company
    assert run(8, 0) != first
    greedy = engine.generate([Request(prompts[0], 12, "a0")])[0].tokens
    assert greedy != first


def test_streaming_and_stop_strings(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    engine, prompts = make_engine(tiny_dir, adapter_dirs)
    full = engine.generate([Request(prompts[3], 12, "a1")])[0]
    assert full.text is not None and len(full.text) > 4
    streamed: list[int] = []
    stop = full.text[2:4]
    gen = engine.generate([Request(prompts[3], 12, "a1", stop_strings=(stop,),
                                   on_token=lambda g, t: streamed.append(t))])[0]
    assert gen.finish_reason == "stop" and gen.text is not None and stop not in gen.text
    assert full.text.startswith(gen.text) and streamed == gen.tokens == full.tokens[: len(gen.tokens)]


def test_cancellation_frees_row_and_slot(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    engine, prompts = make_engine(tiny_dir, adapter_dirs)
    cache = engine.adapters
    assert cache is not None
    seen: list[int] = []

    def disconnect_after_three(gen: Generation, token: int) -> None:
        seen.append(token)
        if len(seen) == 3:
            engine.cancel(gen.request.id)

    keep = engine.submit(Request(prompts[0], 10, "a2"))
    gone = engine.submit(Request(prompts[1], 50, "a3", on_token=disconnect_after_three))
    engine.run()
    assert gone.finish_reason == "cancelled" and gone.done.is_set()
    assert gone.usage.completion_tokens == len(gone.tokens) in (3, 4)  # a step may finish after the callback
    assert keep.finish_reason == "length" and len(keep.tokens) == 10
    assert engine.kv.cache is None and not engine.running
    cache.evict("a3")  # nothing uses it any more: it can leave RAM and its slot
    assert cache.slot_of("a3") == 0 and "a3" not in cache.resident()
    waiting = engine.submit(Request(prompts[2], 5, None))
    engine.cancel(waiting.request.id)
    engine.step()
    assert waiting.finish_reason == "cancelled" and waiting.tokens == []


def test_bad_requests(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    engine, prompts = make_engine(tiny_dir, adapter_dirs)
    for bad, code in ((Request([], 4), errors.BAD_REQUEST), (Request(prompts[0], 0), errors.BAD_REQUEST),
                      (Request(prompts[0], 10_000), errors.BAD_REQUEST),
                      (Request(prompts[0], 4, "unknown"), errors.MODEL_NOT_FOUND)):
        with pytest.raises(LedgerError) as exc:
            engine.submit(bad)
        assert exc.value.code == code


def test_background_thread_serves_submitters(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    engine, prompts = make_engine(tiny_dir, adapter_dirs)
    want = [engine.generate([Request(p, 6, a)])[0].tokens for p, a in zip(prompts[:4], ADAPTERS, strict=False)]
    engine.start()
    try:
        gens: dict[int, Generation] = {}

        def client(i: int) -> None:
            gens[i] = engine.submit(Request(prompts[i], 6, ADAPTERS[i]))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for g in gens.values():
            assert g.done.wait(30)
    finally:
        engine.stop()
    assert [gens[i].tokens for i in range(4)] == want
