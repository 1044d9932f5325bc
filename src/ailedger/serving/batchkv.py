"""The running batch's key/value cache: one left-padded block per layer, rows joining and leaving.

Each request keeps its own keys and values, but a decode step attends for all rows at once, so they
live side by side in one `DynamicCache` of shape (rows, heads, length, dim), each row left-padded
to the longest. `pad[i]` counts row i's padding; the attention mask hides it and each row's
position ids count only its real tokens, so a row computes what it would compute alone. Rows join
(`merge`, after their prefill) and leave (`select`) between steps; leaving trims the padding that
every remaining row shares, so the batch never pays for a request that has gone.

Why each layer is a `SlabLayer` and not `DynamicCache`'s own: those grow by concatenation, which
copies every layer's whole cache on every decode step, and each join or leave built the cache anew
(on CPU, with 16 rows of a few hundred tokens, joins and leaves alone were 6% of the benchmark's
online run, about 55 ms each, and the copy in every step a few percent more). A slab keeps a
layer's keys and values in buffers with spare rows and spare positions on both sides: a decode step
writes its token in place, a leaving row's place is taken by a row from the end (or the rows after
it move down), the padding all rows share is dropped by moving the start, and joining rows are copied
into spare rows with their padding zeroed. Only running out of room reallocates, with room to spare.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values, each (rows, heads, length, dim)
MIN_ROOM = 64  # spare positions kept after the last token when a slab is (re)allocated


class SlabLayer(DynamicLayer):  # type: ignore[no-untyped-call]  # transformers' base classes are untyped
    """One layer's keys and values as views `[:rows, :, start:end]` of buffers with room around them."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, pad: torch.Tensor, rows_capacity: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        rows, heads, n, dim = keys.shape
        self._k = keys.new_zeros(max(rows, rows_capacity), heads, n + _room(n), dim)
        self._v = torch.zeros_like(self._k)
        self.rows, self.start, self.end = 0, 0, n
        self.append(keys, values, pad)

    def _live(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._k[:self.rows, :, self.start:self.end], self._v[:self.rows, :, self.start:self.end]

    def _view(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys, self.values = live = self._live()
        return live

    def _realloc(self, rows_capacity: int, left: int, right: int) -> None:
        """Move the live block into new zeroed buffers, with `left` free positions before it and `right` after."""
        n = self.end - self.start
        _, heads, _, dim = self._k.shape
        k = self._k.new_zeros(rows_capacity, heads, left + n + right, dim)
        v = torch.zeros_like(k)
        old_k, old_v = self._live()
        k[:self.rows, :, left:left + n].copy_(old_k)
        v[:self.rows, :, left:left + n].copy_(old_v)
        self._k, self._v, self.start, self.end = k, v, left, left + n
        self._view()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """A decode step's new keys and values, written in place after the last ones (the model calls this)."""
        add = key_states.shape[-2]
        if self.end + add > self._k.shape[2]:
            self._realloc(self._k.shape[0], 0, max(add, _room(self.end - self.start)))
        self._k[:self.rows, :, self.end:self.end + add].copy_(key_states)
        self._v[:self.rows, :, self.end:self.end + add].copy_(value_states)
        self.end += add
        return self._view()

    def append(self, keys: torch.Tensor, values: torch.Tensor, pad: torch.Tensor) -> None:
        """Add rows (a prefill's keys and values, `pad` (rows,) positions of left padding each) at the end.

        Shorter ones are left-padded to the block's length; if they are longer the block grows to the left.
        Every padded position is zeroed: a prefill leaves whatever it computed there, which could be NaN.
        """
        rows, _, m, _ = keys.shape
        grow = max(0, m - (self.end - self.start))  # positions the block gains on the left
        if self.start < grow or self.rows + rows > self._k.shape[0]:
            self._realloc(max(self._k.shape[0], self.rows + rows), grow, max(self._k.shape[2] - self.end, MIN_ROOM))
        new = slice(self.rows, self.rows + rows)
        hidden = (torch.arange(m, device=keys.device)[None, :] < pad[:, None])[:, None, :, None]
        for buf, src in ((self._k, keys), (self._v, values)):
            buf[:self.rows, :, self.start - grow:self.start].zero_()  # the old rows' new padding
            buf[new, :, self.start - grow:self.end - m].zero_()  # the new rows' padding up to their block
            part = buf[new, :, self.end - m:self.end]
            part.copy_(src)
            part.masked_fill_(hidden, 0.0)  # and their own padding from the prefill
        self.start -= grow
        self.rows += rows
        self._view()

    def keep_rows(self, keep: list[int], cut: int) -> None:
        """Keep rows `keep` (in that order) and drop the first `cut` positions, which every kept row pads."""
        if _in_place(keep):
            for i, j in enumerate(keep):
                if i != j:
                    self._k[i, :, self.start:self.end].copy_(self._k[j, :, self.start:self.end])
                    self._v[i, :, self.start:self.end].copy_(self._v[j, :, self.start:self.end])
        else:
            idx = torch.tensor(keep, device=self._k.device)
            old_k, old_v = self._live()
            self._k[:len(keep), :, self.start:self.end] = old_k.index_select(0, idx)
            self._v[:len(keep), :, self.start:self.end] = old_v.index_select(0, idx)
        self.rows = len(keep)
        self.start += cut
        self._view()


def _room(n: int) -> int:
    return max(MIN_ROOM, n // 2)


def _in_place(keep: list[int]) -> bool:
    """Whether rows can be moved one by one without reading a row already overwritten.

    True when the order is ascending (each row moves down onto one already moved or gone) or when each
    kept row either stays or comes from past the new end (rows from the tail fill the holes).
    """
    return all(a < b for a, b in itertools.pairwise(keep)) or all(
        j == i or j >= len(keep) for i, j in enumerate(keep))


@dataclass
class BatchKV:
    cache: DynamicCache | None = None
    pad: list[int] = field(default_factory=list)
    rows_capacity: int = 0  # rows a slab is sized for when first built (the engine's max batch)

    @property
    def rows(self) -> int:
        return len(self.pad)

    @property
    def length(self) -> int:
        return 0 if self.cache is None else self.cache.get_seq_length()

    def real_lengths(self) -> list[int]:
        return [self.length - p for p in self.pad]

    def mask(self, extra: int = 0) -> torch.Tensor:
        """The (rows, length + extra) attention mask: 0 on each row's left padding."""
        dev = layers(self.cache)[0][0].device if self.cache is not None else torch.device("cpu")
        cols = torch.arange(self.length + extra, device=dev)
        return (cols[None, :] >= torch.tensor(self.pad, device=dev)[:, None]).long()

    def merge(self, other: BatchKV) -> None:
        """Append `other`'s rows (a prefill's cache), left-padding whichever side is shorter, zeroing padding."""
        if other.cache is None:
            return
        data = layers(other.cache)
        dev = data[0][0].device
        pad = torch.tensor(other.pad, device=dev)
        if self.cache is None:
            cache = DynamicCache()
            cache.layers = [SlabLayer(k, v, pad, self.rows_capacity) for k, v in data]
            self.cache, self.pad = cache, list(other.pad)
            return
        n = max(self.length, other.length)
        self.pad = [p + n - self.length for p in self.pad] + [p + n - other.length for p in other.pad]
        for layer, (k, v) in zip(slabs(self.cache), data, strict=True):
            layer.append(k, v, pad)

    def select(self, keep: list[int]) -> None:
        """Keep only rows `keep` (in that order), and drop the padding they all share."""
        if not keep or self.cache is None:
            self.cache, self.pad = None, []
            return
        pad = [self.pad[i] for i in keep]
        cut = min(pad)
        for layer in slabs(self.cache):
            layer.keep_rows(keep, cut)
        self.pad = [p - cut for p in pad]


def slabs(cache: DynamicCache) -> list[SlabLayer]:
    out = []
    for layer in cache.layers:
        if not isinstance(layer, SlabLayer):
            raise TypeError(f"a running batch's cache is made of slab layers, got {type(layer).__name__}")
        out.append(layer)
    return out


def layers(cache: DynamicCache) -> KV:
    """The (keys, values) of each layer of a filled dynamic cache (a full-attention model's)."""
    out = []
    for layer in cache.layers:
        if not isinstance(layer, DynamicLayer) or layer.keys is None or layer.values is None:
            raise TypeError(f"serving needs full-attention dynamic cache layers, got {type(layer).__name__}")
        out.append((layer.keys, layer.values))
    return out
