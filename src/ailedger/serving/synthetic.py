"""Random LoRA adapters in PEFT's format, with a model card, for tests and benchmarks.

Serving many adapters is tested and measured without training each one: these adapters have the
exact layout `train` writes (so PEFT loads them and `validate_adapter` accepts them) and seeded
random weights large enough that each adapter changes what the model says.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import save_file
from torch import nn

from ailedger.factory.adapters import PEFT_PREFIX
from ailedger.factory.basemodel import BaseModel
from ailedger.factory.checkpoints import ADAPTER_FILE
from ailedger.factory.train import CARD_FILE, DEFAULT_TARGETS, adapter_hash


def random_adapter(base: BaseModel, out_dir: Path | str, seed: int, rank: int = 8, alpha: int = 16,
                   target_modules: tuple[str, ...] = DEFAULT_TARGETS, b_std: float = 0.05) -> Path:
    """Write a seeded random adapter for `base` to `out_dir` (safetensors, adapter_config.json, card)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, mod in base.model.named_modules():
        if isinstance(mod, nn.Linear) and name.split(".")[-1] in target_modules:
            a = torch.randn(rank, mod.in_features, generator=g) / mod.in_features ** 0.5
            b = torch.randn(mod.out_features, rank, generator=g) * b_std
            tensors[f"{PEFT_PREFIX}{name}.lora_A.weight"] = a.to(mod.weight.dtype).contiguous()
            tensors[f"{PEFT_PREFIX}{name}.lora_B.weight"] = b.to(mod.weight.dtype).contiguous()
    save_file(tensors, str(out / ADAPTER_FILE), metadata={"format": "pt"})
    LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(target_modules), lora_dropout=0.0, bias="none",
               task_type="CAUSAL_LM").save_pretrained(str(out))
    card = {"kind": "ailedger/adapter-card/v1", "synthetic": True, "seed": seed,
            "base": {k: v for k, v in base.info.to_json().items() if k != "path"},
            "adapter_hash": adapter_hash(out)}
    (out / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return out
