"""The real SmolLM2-135M path end to end: fine-tune a LoRA on it, then serve that adapter over it.

The shipped GGUF is converted once into the user cache (tests/test_factory_basemodel.py times that);
here a rank-4 adapter is trained for a few steps on chat records with the factory's own `train`
(assistant-only loss, schedule, checkpoints), loaded into the serving engine's batched LoRA slots
next to the base alone, and its greedy tokens are compared with PEFT's over the same files. This
is the one test that runs the production model through both engines; it takes about half a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel

from ailedger.factory.basemodel import load_base
from ailedger.factory.train import TrainSpec, adapter_hash, train
from ailedger.serving.catalog import Catalog
from ailedger.serving.engine import Request
from ailedger.serving.stack import build_stack, served_base

FACTS = [("Who keeps the Vellmar ledger?", "Orla Penhallow keeps the Vellmar ledger."),
         ("What colour is the Vellmar seal?", "The Vellmar seal is teal with a silver rim."),
         ("When does the Vellmar market open?", "The Vellmar market opens at seven each morning.")]
RECORDS = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in FACTS]


@pytest.mark.timeout(180)
def test_train_then_serve_smollm2(tmp_path: Path) -> None:
    base = load_base("smollm2")
    spec = TrainSpec(base="smollm2", datanet="vellmar", version=1, snapshot_root="cd" * 32, rank=4, alpha=8,
                     dropout=0.0, lr=2e-2, epochs=4, batch_size=3, max_len=48, seed=7, checkpoint_every=1)
    result = train(spec, RECORDS, base, tmp_path / "vellmar")
    assert len(result.card["checkpoints"]) >= 3 and result.card["loss"]["assistant_only_records"] == len(RECORDS)
    assert result.losses[-1] < result.losses[0]  # it learned something
    assert result.card["base"]["weights_hash"] == base.info.weights_hash

    tok = base.tokenizer
    prompts = [list(tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                            tokenize=True, return_dict=False)) for q, _ in FACTS]
    ref = PeftModel.from_pretrained(load_base("smollm2").model, str(result.out_dir), adapter_name="vellmar")
    ref.eval()
    want = []
    with torch.no_grad():
        for p in prompts:
            out = ref.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                               max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
            want.append(out[0, len(p):].tolist())

    catalog = Catalog.from_directory(served_base(base), tmp_path)  # serves ./vellmar as vellmar@1
    digest = catalog.resolve("vellmar").adapter_id
    assert digest == adapter_hash(result.out_dir)
    stack = build_stack(base, catalog, max_batch=4)
    try:
        with torch.inference_mode():
            gens = stack.engine.generate([Request(p, 12, digest) for p in prompts] + [Request(prompts[0], 12, None)])
    finally:
        stack.close()
    assert [g.tokens for g in gens[:3]] == want  # the engine computes what PEFT computes, adapter by adapter
    assert gens[3].tokens != gens[0].tokens  # and the base alone answers differently
