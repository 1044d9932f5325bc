"""The running batch's key/value cache: one left-padded tensor per layer, rows joining and leaving.

Each request keeps its own keys and values, but a decode step attends for all rows at once, so they
live side by side in one `DynamicCache` of shape (rows, heads, length, dim), each row left-padded
to the longest. `pad[i]` counts row i's padding; the attention mask hides it and each row's
position ids count only its real tokens, so a row computes what it would compute alone. Rows join
(`merge`, after their prefill) and leave (`select`) between steps; leaving trims the padding that
every remaining row shares, so the batch never pays for a request that has gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values, each (rows, heads, length, dim)


@dataclass
class BatchKV:
    cache: DynamicCache | None = None
    pad: list[int] = field(default_factory=list)

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
        """Append `other`'s rows, left-padding whichever side is shorter."""
        if other.cache is None:
            return
        if self.cache is None:
            self.cache, self.pad = other.cache, list(other.pad)
            return
        n = max(self.length, other.length)
        data = [(torch.cat([_left_pad(k1, n), _left_pad(k2, n)]), torch.cat([_left_pad(v1, n), _left_pad(v2, n)]))
                for (k1, v1), (k2, v2) in zip(layers(self.cache), layers(other.cache), strict=True)]
        self.pad = [p + n - self.length for p in self.pad] + [p + n - other.length for p in other.pad]
        self.cache = DynamicCache(ddp_cache_data=data)

    def select(self, keep: list[int]) -> None:
        """Keep only rows `keep` (in that order), and drop the padding they all share."""
        if not keep or self.cache is None:
            self.cache, self.pad = None, []
            return
        pad = [self.pad[i] for i in keep]
        cut = min(pad)
        kv = layers(self.cache)
        idx = torch.tensor(keep, device=kv[0][0].device)
        data = [(k[idx, :, cut:], v[idx, :, cut:]) for k, v in kv]
        self.pad = [p - cut for p in pad]
        self.cache = DynamicCache(ddp_cache_data=data)

    def zero_padding(self) -> None:
        """Overwrite padded positions with zeros (a prefill leaves whatever the model computed there)."""
        if self.cache is None or not any(self.pad):
            return
        keep = self.mask().bool()[:, None, :, None]
        self.cache = DynamicCache(ddp_cache_data=[(torch.where(keep, k, 0.0), torch.where(keep, v, 0.0))
                                                  for k, v in layers(self.cache)])


def layers(cache: DynamicCache) -> KV:
    """The (keys, values) of each layer of a filled dynamic cache (a full-attention model's)."""
    out = []
    for layer in cache.layers:
        if not isinstance(layer, DynamicLayer) or layer.keys is None or layer.values is None:
            raise TypeError(f"serving needs full-attention dynamic cache layers, got {type(layer).__name__}")
        out.append((layer.keys, layer.values))
    return out


def _left_pad(t: torch.Tensor, n: int) -> torch.Tensor:
    short = n - t.shape[2]
    return t if short == 0 else torch.cat([t.new_zeros(t.shape[0], t.shape[1], short, t.shape[3]), t], dim=2)
