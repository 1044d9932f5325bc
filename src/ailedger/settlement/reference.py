"""One receipt settled with plain Python ints: the rules of plan.py written the slow, obvious way.

Three uses: the tests' oracle for the vectorised settlement, the benchmark's per-receipt baseline, and
the view that lists the receipts behind an earnings line (it recomputes each receipt's parts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ailedger.settlement.plan import BASE_SPLIT


def largest_remainder(amount: int, weights: list[int]) -> list[int]:
    """floor(amount * w / W) each, then one more each to the largest remainders, ties to the earlier index."""
    total = sum(weights)
    if total == 0 or amount == 0:
        return [0] * len(weights)
    parts = [amount * w // total for w in weights]
    rems = [amount * w % total for w in weights]
    for i in sorted(range(len(weights)), key=lambda i: (-rems[i], i))[:amount - sum(parts)]:
        parts[i] += 1
    return parts


@dataclass
class ReceiptPayout:
    data: list[tuple[bytes, int]] = field(default_factory=list)  # (record, amount) of eligible records
    refund: int = 0
    model_owner: int = 0
    compute: int = 0
    validators: int = 0


def settle_receipt(charged: int, split: tuple[int, int, int, int], shares: list[tuple[bytes, int]],
                   eligible: set[bytes]) -> ReceiptPayout:
    """Rules 1-3 for one receipt: shares (record, bp) in ascending record order; `eligible`: accepted records."""
    data, owner, compute, validators = largest_remainder(charged, list(split))
    out = ReceiptPayout(model_owner=owner, compute=compute, validators=validators)
    weights = [bp if record in eligible else 0 for record, bp in shares]
    if sum(weights) == 0:
        out.refund = data
        return out
    parts = largest_remainder(data, weights)
    out.data = [(record, part) for (record, _), part, w in zip(shares, parts, weights, strict=True) if w > 0]
    return out


def split_of(datanet_split: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    return datanet_split if datanet_split is not None else BASE_SPLIT
