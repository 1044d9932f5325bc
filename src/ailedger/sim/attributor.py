"""A seeded stand-in for the attribution engine, so 1,000 blocks of paid inference fit in minutes.

Why a stand-in: the real engine (`ailedger.attribution`: LoRA gradients of SmolLM2-135M, a suffix
array, the shares rule) costs about half a second per answer on this 2-core machine, and the
simulation serves a dozen answers a block for 1,000 blocks: hours, far outside the run's 10-minute
budget. The economy does not need the model's exact influence, only an attribution with the same
shape and the same failure modes, fed to the same ledger rules.

The stand-in's rule, stated so anyone can recompute a receipt:
* a request asks about a few cooking words (drawn from `datanet.synth.writer.V`);
* a record's **usefulness** is the number of distinct cooking-vocabulary words it contains (junk,
  leaks' stray sentences and noise contain none, so junk never has any);
* a record's score for a request is 1,000 x (request words it contains) + 10 x usefulness + a
  seeded jitter of 0..9 (SHA-256 of the receipt id and the record hash), so near-equal records take
  turns;
* only records of the adapter's Datanet snapshot are scored, records sharing no word with the
  request score nothing, the best `TOP` are kept and turned into basis points by the engine's own
  integer rule (`attribution.shares.record_shares`, largest remainder); no scored record means no
  shares, and settlement refunds the data part to the caller.

What it shares with the real engine, and why that matters here: it rewards word overlap, so a
keyword stuffer's record would win many answers if it were ever accepted. The defence is upstream:
only records the Datanet accepted reach a snapshot, and the ledger pays only records that are
accepted when the receipt settles.
"""

from __future__ import annotations

import re
from collections import defaultdict

from ailedger.attribution.shares import record_shares
from ailedger.billing.payloads import ReceiptShare
from ailedger.core.hashing import sha256
from ailedger.datanet.synth.writer import V

TOP = 8
_WORD = re.compile(r"[a-z]+")
VOCAB: tuple[str, ...] = tuple(sorted({w for pool in V.values() for phrase in pool for w in _WORD.findall(phrase)
                                       if len(w) > 3}))
QUERY_POOLS: tuple[tuple[str, ...], ...] = tuple(
    tuple(sorted({w for phrase in V[k] for w in _WORD.findall(phrase) if len(w) > 3})) for k in ("ing", "dish", "tech"))


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class StandInAttributor:
    """The records of one snapshot, indexed by vocabulary word."""

    def __init__(self, records: dict[bytes, str], contributors: dict[bytes, bytes]) -> None:
        """`records`: hash -> text of every record of the snapshot; `contributors`: hash -> contributor."""
        vocab = set(VOCAB)
        self.contributors = contributors
        self.index: dict[str, list[bytes]] = defaultdict(list)
        self.usefulness: dict[bytes, int] = {}
        for h, text in records.items():
            found = words(text) & vocab
            self.usefulness[h] = len(found)
            for w in found:
                self.index[w].append(h)

    def __len__(self) -> int:
        return len(self.usefulness)

    def shares(self, receipt_id: bytes, query: tuple[str, ...]) -> list[ReceiptShare]:
        """The receipt's per-record shares, ascending by record hash as billing requires; [] when nothing fits."""
        hits: dict[bytes, int] = defaultdict(int)
        for w in query:
            for h in self.index.get(w, ()):
                hits[h] += 1
        scored = {h: 1_000 * n + 10 * self.usefulness[h] + sha256(receipt_id + h)[0] % 10 for h, n in hits.items()}
        best = sorted(scored, key=lambda h: (-scored[h], h))[:TOP]
        split = record_shares({h: scored[h] for h in best}, self.contributors).bps()
        return [ReceiptShare(h, bp) for h, bp in sorted(split.items())]
