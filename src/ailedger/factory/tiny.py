"""A tiny Llama-architecture causal LM, built and saved deterministically, for fast real tests.

It is a real Hugging Face model directory (config.json, model.safetensors, tokenizer files, a chat
template), loaded through the same `load_base` as SmolLM2, so the tests exercise the production path
in a fraction of a second. The tokenizer is a byte-level BPE trained on a few sentences: any text
encodes (bytes are its alphabet), and the merges keep sequences short.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from ailedger.factory.basemodel import offline

offline()

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# The same shape as SmolLM2's template, so chat records render the same way on both.
CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = [
    "The ledger records who contributed each piece of data.",
    "A datanet is a versioned set of accepted records.",
    "Contributors are paid when models trained on their records are used.",
    "The quick brown fox jumps over the lazy dog.",
    "Validators review records and vote on what passes.",
    "Every fee is split exactly between contributors, owners and providers.",
    "user assistant system question answer hello world",
]


def build_tokenizer(corpus: list[str] | None = None, vocab_size: int = 384) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus or CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # untyped __init__ in transformers
        tokenizer_object=tok, eos_token=SPECIAL[0], pad_token=SPECIAL[0],
        bos_token=SPECIAL[0], unk_token=None)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny(out_dir: Path | str, seed: int = 0, hidden: int = 64, layers: int = 2, heads: int = 4,
               kv_heads: int = 2, context: int = 256, init_std: float = 0.3) -> Path:
    """Write a tiny random Llama model and its tokenizer to `out_dir`; the same seed gives the same tensors."""
    # init_std is far above HF's 0.02 on purpose: the output layer is the (tied) embedding, and with
    # rows that small the logits stay within about +-1, so no adapter could make a confident prediction
    # and fine-tuning tests could not see the loss fall.
    out = Path(out_dir)
    tokenizer = build_tokenizer()
    eos = tokenizer.convert_tokens_to_ids(SPECIAL[0])
    assert isinstance(eos, int)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=context, tie_word_embeddings=True, bos_token_id=eos,
                         eos_token_id=eos, pad_token_id=eos, initializer_range=init_std,
                         architectures=["LlamaForCausalLM"])
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
