"""Base models: the tiny test model through the real loader, tensor hashes, and the real SmolLM2 path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.embedding import default_cache_dir
from ailedger.factory.basemodel import SMOLLM2_DIR, config_hash, describe, load_base, weights_hash
from ailedger.factory.tiny import build_tiny


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny") / "tiny-llama", seed=3)


def test_tiny_loads_through_load_base(tiny_dir: Path) -> None:
    base = load_base(tiny_dir)
    assert base.info.architecture == "LlamaForCausalLM"
    assert base.info.params_count == sum(p.numel() for p in base.model.parameters())
    assert base.info.context_length == 256
    assert base.info.weights_hash == weights_hash(tiny_dir)
    assert base.info.config_hash == config_hash(tiny_dir)
    ids = base.tokenizer("The ledger records", return_tensors="pt")["input_ids"]
    out = base.model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4


def test_weights_hash_is_stable_and_layout_free(tiny_dir: Path, tmp_path: Path) -> None:
    again = build_tiny(tmp_path / "again", seed=3)
    assert weights_hash(again) == weights_hash(tiny_dir)
    assert (again / "tokenizer.json").read_bytes() == (tiny_dir / "tokenizer.json").read_bytes()
    # the same tensors split over several files hash the same
    base = load_base(tiny_dir)
    base.model.save_pretrained(str(tmp_path / "sharded"), max_shard_size="100KB")
    assert len(list((tmp_path / "sharded").glob("*.safetensors"))) > 1
    assert weights_hash(tmp_path / "sharded") == weights_hash(tiny_dir)
    assert weights_hash(build_tiny(tmp_path / "other", seed=4)) != weights_hash(tiny_dir)


def test_unknown_or_damaged_base_is_refused(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(LedgerError) as exc:
        load_base(tmp_path / "nowhere")
    assert exc.value.code == errors.BASE_MODEL_UNAVAILABLE
    broken = build_tiny(tmp_path / "broken", seed=3)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(LedgerError) as exc:
        load_base(broken)
    assert exc.value.code == errors.WEIGHTS_TRUNCATED
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + data[100:])
    with pytest.raises(LedgerError) as exc:
        describe(broken)
    assert exc.value.code == errors.WEIGHTS_CORRUPT


@pytest.mark.timeout(90)
def test_smollm2_real_path_slow() -> None:
    """SLOW (about 20 s the first time on a machine, 2 s after): GGUF -> safetensors in the user cache."""
    stages: list[str] = []
    started = time.perf_counter()
    base = load_base("smollm2", progress=lambda stage, done, total: stages.append(f"{stage} {done}/{total}"))
    first = time.perf_counter() - started
    target = default_cache_dir() / SMOLLM2_DIR
    assert (target / "model.safetensors").is_file()
    assert "quantization_config" not in (target / "config.json").read_text()
    assert base.info.architecture == "LlamaForCausalLM"
    assert 130_000_000 < base.info.params_count < 140_000_000
    assert base.info.context_length == 8192
    assert base.info.weights_hash == weights_hash(target)  # hashing twice gives the same answer
    started = time.perf_counter()
    again = load_base("smollm2")
    assert time.perf_counter() - started < max(10.0, first)  # the cached copy, not a second conversion
    assert again.info == base.info
    tok = base.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = base.model.generate(ids, max_new_tokens=8, do_sample=False)
    answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer
