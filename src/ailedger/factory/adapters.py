"""Adapters on disk: checked against their card and against the base they are meant to run on.

An adapter directory is what `train` writes: `adapter_model.safetensors`, `adapter_config.json`
and `model_card.json`. Before any tensor reaches torch it is checked three ways, each failure with
its own code: the file is whole (`weights_truncated`) and its tensors hash to the hash its card
records (`weights_corrupt`); the card names this base's weights hash (`adapter_base_mismatch`); and
every LoRA matrix fits the base layer it wraps (`adapter_shape_mismatch`), so an adapter for
another architecture fails here rather than deep inside a matmul.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peft import PeftModel

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.basemodel import BaseModel, BaseModelInfo
from ailedger.factory.checkpoints import ADAPTER_CONFIG, ADAPTER_FILE
from ailedger.factory.tensors import TensorEntry, dir_entries, read_adapter_json, read_header, tensors_hash
from ailedger.factory.train import CARD_FILE

PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class AdapterInfo:
    path: Path
    adapter_hash: str
    base_weights_hash: str
    rank: int
    target_modules: tuple[str, ...]
    tensors: tuple[TensorEntry, ...]
    config: dict[str, Any]
    card: dict[str, Any]

    @property
    def bytes(self) -> int:
        return sum(e.end - e.start for e in self.tensors)


def inspect_adapter(directory: Path | str) -> AdapterInfo:
    """Read an adapter's files and check that its tensors are whole and are the ones its card names."""
    d = Path(directory)
    if not (d / ADAPTER_FILE).is_file():
        raise LedgerError(errors.ADAPTER_INVALID, f"{d / ADAPTER_FILE} is missing")
    _, config = read_adapter_json(d / ADAPTER_CONFIG)
    _, card = read_adapter_json(d / CARD_FILE)
    entries = read_header(d / ADAPTER_FILE)
    digest = tensors_hash(entries)
    try:
        recorded, base_hash = str(card["adapter_hash"]), str(card["base"]["weights_hash"])
        rank, targets = int(config["r"]), config["target_modules"]
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(errors.ADAPTER_INVALID, f"{d}: card or config lacks {exc}") from exc
    if recorded != digest:
        raise LedgerError(errors.WEIGHTS_CORRUPT, f"{d / ADAPTER_FILE} hashes to {digest}, its card says {recorded}")
    return AdapterInfo(d, digest, base_hash, rank, tuple(sorted(targets)), tuple(entries), config, card)


def _base_shapes(base: BaseModelInfo) -> dict[str, tuple[int, ...]]:
    return {e.name: e.shape for e in dir_entries(Path(base.path))}


def check_shapes(info: AdapterInfo, base_shapes: dict[str, tuple[int, ...]]) -> None:
    """Every lora_A is (rank, in) and every lora_B (out, rank) of an existing linear layer of the base."""
    for e in info.tensors:
        name = e.name.removeprefix(PEFT_PREFIX)
        module, kind = None, None
        for k in ("lora_A", "lora_B"):
            if f".{k}." in name:
                module, kind = name.split(f".{k}.")[0], k
        weight = base_shapes.get(f"{module}.weight") if module else None
        if weight is None or len(weight) != 2 or len(e.shape) != 2:
            raise LedgerError(errors.ADAPTER_SHAPE_MISMATCH, f"{e.name}: no matching linear layer in the base")
        out_f, in_f = weight
        want = (info.rank, in_f) if kind == "lora_A" else (out_f, info.rank)
        if e.shape != want:
            raise LedgerError(errors.ADAPTER_SHAPE_MISMATCH,
                              f"{e.name} is {list(e.shape)}, the base needs {list(want)}")


def validate_adapter(directory: Path | str, base: BaseModelInfo,
                     base_shapes: dict[str, tuple[int, ...]] | None = None) -> AdapterInfo:
    """Check an adapter against the base it is to run on; returns what it is."""
    info = inspect_adapter(directory)
    if info.base_weights_hash != base.weights_hash:
        raise LedgerError(errors.ADAPTER_BASE_MISMATCH,
                          f"trained on base {info.base_weights_hash}, this base is {base.weights_hash}")
    check_shapes(info, base_shapes if base_shapes is not None else _base_shapes(base))
    return info


def load_adapter(base: BaseModel, directory: Path | str, adapter_name: str = "default") -> PeftModel:
    """Validate an adapter and attach it to `base.model` (in place, as PEFT does) for generation."""
    info = validate_adapter(directory, base.info)
    model: PeftModel = PeftModel.from_pretrained(base.model, str(info.path), adapter_name=adapter_name)
    model.eval()
    return model
