"""The LoRA room and the adapter cache room on the tiny model, checked against PEFT itself."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest
import torch
from peft import PeftModel

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.factory.basemodel import BaseModel, load_base
from ailedger.factory.tiny import build_tiny
from ailedger.serving.adapters import AdapterCache, file_bytes, read_adapter
from ailedger.serving.lora import LoRASlots, inject
from ailedger.serving.synthetic import random_adapter

RANKS = [8, 4, 8, 2, 8, 4]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("serving") / "tiny", seed=5)


@pytest.fixture(scope="session")
def adapter_dirs(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = load_base(tiny_dir)
    root = tmp_path_factory.mktemp("adapters")
    return {f"a{i}": random_adapter(base, root / f"a{i}", seed=100 + i, rank=r) for i, r in enumerate(RANKS)}


def peft_model(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> PeftModel:
    """A separate copy of the base with every adapter loaded into PEFT under its id."""
    names = list(adapter_dirs)
    model = PeftModel.from_pretrained(load_base(tiny_dir).model, str(adapter_dirs[names[0]]), adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(str(adapter_dirs[name]), adapter_name=name)
    model.eval()
    return model


def served(tiny_dir: Path, adapter_dirs: dict[str, Path], max_slots: int = 8,
           budget: int = 1 << 30) -> tuple[BaseModel, LoRASlots, AdapterCache]:
    base = load_base(tiny_dir)
    slots = inject(base.model, max_slots=max_slots, max_rank=8)
    cache = AdapterCache(slots, budget, base.info)
    for name, path in adapter_dirs.items():
        cache.register(name, path)
    return base, slots, cache


def load_now(cache: AdapterCache, adapter_id: str) -> int:
    """Acquire a slot, waiting for the loader thread (tests only; the engine never waits)."""
    for _ in range(2000):
        slot = cache.acquire(adapter_id)
        if slot is not None:
            return slot
        time.sleep(0.001)
        cache.poll()
    raise AssertionError(f"{adapter_id} never loaded")


def test_mixed_batch_equals_peft_per_row(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    reference = peft_model(tiny_dir, adapter_dirs)
    base, slots, cache = served(tiny_dir, adapter_dirs)
    rows: list[str | None] = ["a0", None, "a1", "a3", "a0", "a5", None, "a2"]
    slot_of = {name: load_now(cache, name) for name in adapter_dirs}
    names = [r or "__base__" for r in rows]
    ids = torch.randint(3, 300, (len(rows), 9), generator=torch.Generator().manual_seed(0))
    x = torch.randn(len(rows), 9, 64, generator=torch.Generator().manual_seed(1))
    peft_q = reference.base_model.model.model.layers[1].self_attn.q_proj
    with torch.no_grad():
        want = reference(input_ids=ids, adapter_names=names).logits
        want_q = peft_q(x, adapter_names=names)
        for kernel in ("cached", "gather", "segment"):
            slots.set_kernel(kernel)
            slots.select([slot_of[r] if r else 0 for r in rows])
            # one layer: equal to fp32 rounding; the whole model (logits of magnitude ~5): 1e-5 relative
            assert (slots.layers["model.layers.1.self_attn.q_proj"](x) - want_q).abs().max().item() < 2e-6, kernel
            got = base.model(input_ids=ids).logits
            assert (got - want).abs().max().item() < 1e-5 * want.abs().max().item(), kernel
        slots.select([0] * len(rows))
        plain = base.model(input_ids=ids).logits
        with reference.disable_adapter():
            assert (plain - reference(input_ids=ids).logits).abs().max().item() < 1e-5
    assert (want[0] - plain[0]).abs().max().item() > 0.1  # the adapters do change the answer


def test_cached_rows_follow_selection_and_slot_changes(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    _, slots, cache = served(tiny_dir, adapter_dirs)
    s0, s1 = load_now(cache, "a0"), load_now(cache, "a1")
    rows = [s0, 0, s1, s0]
    x = torch.randn(len(rows), 3, 64, generator=torch.Generator().manual_seed(2))
    layer = slots.layers["model.layers.1.self_attn.q_proj"]
    batch = slots.batch

    def reference(inputs: torch.Tensor) -> torch.Tensor:  # `gather` reads the slots on every forward
        slots.set_kernel("gather")
        out = layer(inputs)
        slots.set_kernel("cached")
        return out

    def same(got: torch.Tensor, want: torch.Tensor) -> bool:
        return (got - want).abs().max().item() < 2e-6

    with torch.no_grad():
        slots.select(rows)
        first = layer(x)
        assert same(first, reference(x))
        gathers = batch.rows_gathered
        layer(x)
        slots.select(rows)  # a decode step after a decode step: nothing is gathered again
        layer(x)
        assert batch.rows_gathered == gathers
        slots.select([s1])  # a prefill between decode steps: its rows are gathered, the decode's kept
        assert same(layer(x[:1]), reference(x[:1]))
        slots.select(rows)
        assert same(layer(x), first) and batch.rows_gathered == gathers + 1
        slots.select(rows[:3])  # the last row left: the rows before it stay where they are
        assert same(layer(x[:3]), first[:3]) and batch.rows_gathered == gathers + 1
        slots.select(rows)
        assert same(layer(x), first) and batch.rows_gathered == gathers + 1

        loaded = read_adapter("a2", adapter_dirs["a2"])
        slots.write(s0, loaded.weights, loaded.scale)  # the slot changes between steps, the rows do not
        slots.select(rows)
        rewritten = layer(x)
        assert not same(rewritten[0], first[0]) and same(rewritten, reference(x))
        assert same(rewritten[2], first[2])
        slots.clear(s1)  # after `select`, before the forward: still seen
        cleared = layer(x)
        assert same(cleared, reference(x)) and same(cleared[2], layer.base(x[2]))
        assert same(cleared[0], rewritten[0])
        slots.select([0] * len(rows))  # no adapter row: the base alone, nothing gathered
        assert same(layer(x), layer.base(x)) and batch.rows is None
    with pytest.raises(ValueError):
        slots.set_kernel("dense")  # type: ignore[arg-type]


def test_cached_kernel_through_random_selections(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    _, slots, cache = served(tiny_dir, adapter_dirs)
    slot_of = [0] + [load_now(cache, name) for name in adapter_dirs]
    layer = slots.layers["model.layers.0.self_attn.v_proj"]
    rng = random.Random(3)
    rows: list[int] = []
    with torch.no_grad():
        for step in range(60):  # rows join at the end, leave anywhere, prefills come between; slots are rewritten
            move = rng.random()
            if move < 0.4 or not rows:
                rows = rows + [rng.choice(slot_of) for _ in range(rng.randint(1, 3))]
            elif move < 0.7:
                rows = [s for s in rows if rng.random() < 0.7] or rows[:1]
            elif move < 0.8:
                slots.write(rng.choice(slot_of[1:]), *_weights_and_scale(adapter_dirs, rng.choice(list(adapter_dirs))))
            chosen = rows if rng.random() < 0.8 else [rng.choice(slot_of) for _ in range(rng.randint(1, 3))]
            x = torch.randn(len(chosen), 2, 64, generator=torch.Generator().manual_seed(step))
            slots.select(chosen)
            got = layer(x)
            slots.set_kernel("gather")
            want = layer(x)
            slots.set_kernel("cached")
            assert (got - want).abs().max().item() < 2e-6, (step, chosen)
    cache.close()


def _weights_and_scale(adapter_dirs: dict[str, Path], name: str) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]],
                                                                          float]:
    loaded = read_adapter(name, adapter_dirs[name])
    return loaded.weights, loaded.scale


def test_inject_replaces_attention_projections_only(tiny_dir: Path) -> None:
    base = load_base(tiny_dir)
    slots = inject(base.model, max_slots=3, max_rank=4)
    assert sorted({n.split(".")[-1] for n in slots.layers}) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert len(slots.layers) == 4 * base.model.config.num_hidden_layers
    with pytest.raises(LedgerError) as exc:
        inject(load_base(tiny_dir).model, target_modules=("nothing",))
    assert exc.value.code == errors.ADAPTER_SHAPE_MISMATCH


def test_rank_above_slot_rank_is_refused(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    base = load_base(tiny_dir)
    slots = inject(base.model, max_slots=3, max_rank=4)
    cache = AdapterCache(slots, 1 << 30, base.info)
    cache.register("a0", adapter_dirs["a0"])  # rank 8
    with pytest.raises(LedgerError) as exc:
        load_now(cache, "a0")
    assert exc.value.code == errors.ADAPTER_SHAPE_MISMATCH
    assert cache.slot_of("a0") == 0 and cache.resident() == {}


def test_byte_budget_lru_and_pinning(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    size = {name: file_bytes(path) for name, path in adapter_dirs.items()}
    assert size["a0"] == 2 * size["a1"] == 4 * size["a3"]  # bytes follow rank, not a count
    budget = size["a0"] + size["a2"] + size["a1"]  # rank 8 + 8 + 4
    _, _, cache = served(tiny_dir, adapter_dirs, budget=budget)
    for name in ("a0", "a2", "a1"):
        load_now(cache, name)
        cache.release(name)
    assert cache.resident() == {"a0": size["a0"], "a2": size["a2"], "a1": size["a1"]}
    cache.pin("a0")
    load_now(cache, "a2")  # a2 is now the most recent use, a1 the least recent unpinned
    cache.release("a2")
    load_now(cache, "a4")  # rank 8: a1 (LRU) goes, and a2 too, since a0 is pinned
    assert set(cache.resident()) == {"a0", "a4"} and cache.used_bytes() <= budget
    assert cache.slot_of("a1") == cache.slot_of("a2") == 0
    # a request still using a4 keeps it; a0 is pinned: nothing can make room, so a2 waits
    assert cache.acquire("a2") is None
    assert set(cache.resident()) == {"a0", "a4"}
    cache.release("a4")
    assert load_now(cache, "a2") and set(cache.resident()) == {"a0", "a2"}
    assert all(size[k] == v for k, v in cache.resident().items())
    cache.close()


def test_slot_count_evicts_lru_slot_but_keeps_ram(tiny_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    _, slots, cache = served(tiny_dir, adapter_dirs, max_slots=3)  # two adapter slots
    s0 = load_now(cache, "a0")
    s1 = load_now(cache, "a1")
    assert {s0, s1} == {1, 2}
    assert cache.acquire("a2") is None  # starts loading; both slots are in use
    cache.release("a0")
    s2 = load_now(cache, "a2")
    assert s2 == s0 and cache.slot_of("a0") == 0 and "a0" in cache.resident()
    layer = next(iter(slots.layers.values()))
    assert layer.a[s2].abs().sum() > 0 and layer.a[0].abs().sum() == 0
    cache.close()


def test_bad_adapter_fails_its_requests_only(tiny_dir: Path, adapter_dirs: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(adapter_dirs["a1"], broken)
    data = (broken / "adapter_model.safetensors").read_bytes()
    (broken / "adapter_model.safetensors").write_bytes(data[:-64] + bytes(64))  # same length, other bytes
    _, _, cache = served(tiny_dir, adapter_dirs)
    cache.register("broken", broken)
    with pytest.raises(LedgerError) as exc:
        load_now(cache, "broken")
    assert exc.value.code == errors.WEIGHTS_CORRUPT
    assert load_now(cache, "a1") > 0
    with pytest.raises(LedgerError) as missing:
        cache.acquire("nope")
    assert missing.value.code == errors.MODEL_NOT_FOUND
    cache.close()
