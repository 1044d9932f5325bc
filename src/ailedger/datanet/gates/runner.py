"""Every automatic gate over a stream of records, chunk by chunk, one result per record.

Why chunks: MinHash and embeddings are fast only when a chunk of texts goes through NumPy at once,
and a contribution file may hold a million lines, so records are read a chunk at a time and each
chunk's results are yielded before the next is read. What stays in memory grows only by the
duplicate-detection state: a set entry per record hash and about 330 bytes per indexed record.

Order: schema, exact duplicate, PII (a redaction changes the text the later gates read), quality,
off-topic, near duplicate. Every gate runs on every record it can read, so a contributor sees all
that is wrong with a record at once; a record that is not an object or is over the size limit has
no text to read. Only records that passed every earlier gate join the near-duplicate index.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.gates.exact import ExactDupGate
from ailedger.datanet.gates.lsh import NearDupIndex
from ailedger.datanet.gates.minhash import MinHasher
from ailedger.datanet.gates.neardup import NearDupGate
from ailedger.datanet.gates.offtopic import OffTopicGate
from ailedger.datanet.gates.pii import PiiGate, Policy
from ailedger.datanet.gates.quality import QualityBounds, QualityGate
from ailedger.datanet.gates.records import canonical_record, record_hash, record_text
from ailedger.datanet.gates.schema import DEFAULT_MAX_RECORD_BYTES, SchemaGate
from ailedger.datanet.gates.verdict import Gate, SchemaReason, Verdict

if TYPE_CHECKING:
    from ailedger.cluster import Cluster

T = TypeVar("T")


@dataclass(frozen=True)
class GateConfig:
    """A Datanet's gate settings (the economic thresholds stay in the ledger's parameter registry)."""

    schema: dict[str, Any] | None = None
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    text_fields: tuple[str, ...] | None = None  # None: every string in the record
    neardup_threshold: float = 0.8
    neardup_num_perm: int = 128
    neardup_seed: int = 1
    pii_policy: Policy = "reject"
    quality: QualityBounds = field(default_factory=QualityBounds)
    chunk_size: int = 1000

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise LedgerError(errors.BAD_GATE_CONFIG, "chunk_size must be at least 1")
        if self.pii_policy not in ("reject", "redact"):
            raise LedgerError(errors.BAD_GATE_CONFIG, f"pii_policy must be reject or redact, not {self.pii_policy!r}")


@dataclass(frozen=True)
class RecordResult:
    index: int  # position in the input stream
    record_hash: bytes  # of the record as submitted
    record: Any  # the record to store: redacted when the PII policy redacts
    verdicts: tuple[Verdict, ...]  # every finding, in gate order; a redaction is a passing one
    stored_hash: bytes  # of `record` (equal to record_hash unless redacted)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def failures(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.passed)


@dataclass(frozen=True)
class Screened:
    """A chunk's findings that depend on no other record, before the batch's duplicate checks.

    Everything here is a function of the chunk alone (and the settings), so chunks can be screened
    anywhere (Ray tasks, `screen_tasks`) and in any order; what depends on the records before them
    (exact and near duplicates) is decided afterwards, in stream order, by the runner.
    """

    base: int  # stream index of the chunk's first record
    hashes: list[bytes]  # of each record as submitted
    stored: list[Any]  # the record to store (redacted when the PII policy redacts)
    stored_hashes: list[bytes]
    texts: list[str]  # what the text gates read ("" for a record without readable text)
    found: list[list[Verdict]]  # schema, PII and quality findings, in gate order
    signatures: Any  # MinHash signatures of `texts` (n x num_perm uint32)


class Screener:
    """The gates that judge a record alone: schema, PII, quality, and the MinHash signature of its text."""

    def __init__(self, config: GateConfig) -> None:
        self.config = config
        self.schema = SchemaGate(config.schema, config.max_record_bytes)
        self.pii = PiiGate(config.pii_policy, config.text_fields)
        self.quality = QualityGate(config.quality)
        self.minhash = MinHasher(config.neardup_num_perm, config.neardup_seed)

    def screen(self, base: int, records: Sequence[Any]) -> Screened:
        hashes: list[bytes] = []
        stored: list[Any] = []
        texts: list[str] = []
        found: list[list[Verdict]] = []
        for i, rec in enumerate(records):
            canon = canonical_record(rec)
            h = hashlib.sha256(canon).digest()
            verdicts: list[Verdict] = []
            schema = self.schema.check(rec, len(canon))
            if schema is not None:
                verdicts.append(Verdict(base + i, h, Gate.SCHEMA, *schema))
            text = ""
            if schema is None or schema[0] == SchemaReason.SCHEMA_MISMATCH:
                pii = self.pii.check(rec)
                if pii is not None:
                    redacted = pii.redacted is not None
                    verdicts.append(Verdict(base + i, h, Gate.PII, pii.reason,
                                            ("redacted " if redacted else "") + pii.detail, passed=redacted))
                    rec = pii.redacted if redacted else rec
                text = record_text(rec, self.config.text_fields)
                quality = self.quality.check(text)
                if quality is not None:
                    verdicts.append(Verdict(base + i, h, Gate.QUALITY, *quality))
            hashes.append(h)
            stored.append(rec)
            texts.append(text)
            found.append(verdicts)
        stored_hashes = [h if rec is orig else record_hash(rec)
                         for h, rec, orig in zip(hashes, stored, records, strict=True)]
        return Screened(base, hashes, stored, stored_hashes, texts, found, self.minhash.signatures(texts))


class GateRunner:
    """The gates of one batch: feed chunks in stream order with `check_chunk`, or a whole stream with `run`.

    With a `cluster`, `check_chunks` (and `run`) screen the chunks as Ray tasks, a few ahead, and
    decide the duplicates here in stream order: the results are the local ones, record for record.
    """

    def __init__(self, config: GateConfig | None = None, known_hashes: Container[bytes] = frozenset(),
                 neardup_index: NearDupIndex | None = None, offtopic: OffTopicGate | None = None,
                 cluster: Cluster | None = None) -> None:
        self.config = config = config or GateConfig()
        self.screener = Screener(config)
        self.exact = ExactDupGate(known_hashes)
        self.offtopic = offtopic
        self.cluster = cluster
        if neardup_index is not None and (neardup_index.threshold, neardup_index.num_perm, neardup_index.seed) != (
                config.neardup_threshold, config.neardup_num_perm, config.neardup_seed):
            raise LedgerError(errors.BAD_GATE_CONFIG, "the near-duplicate index was built with other settings "
                                                      f"({neardup_index.settings()})")
        self.neardup = NearDupGate(neardup_index, config.neardup_threshold, config.neardup_num_perm,
                                   config.neardup_seed)
        self._next = 0

    def run(self, records: Iterable[Any]) -> Iterator[RecordResult]:
        it = iter(records)
        chunks = iter(lambda: list(islice(it, self.config.chunk_size)), [])
        for _, results in self.check_chunks((None, chunk) for chunk in chunks):
            yield from results

    def check_chunks(self, chunks: Iterable[tuple[T, Sequence[Any]]]) -> Iterator[tuple[T, list[RecordResult]]]:
        """(tag, `check_chunk(records)`) for each (tag, records) in turn; with a cluster, screened on it a few ahead.

        The tag is the caller's own (what it read beside the chunk's records) and comes back with the
        chunk's results, so a caller whose chunks are read ahead needs no queue of its own.
        """
        if self.cluster is None:
            for tag, chunk in chunks:
                yield tag, self.check_chunk(chunk)
            return
        from ailedger.datanet.gates.screen_tasks import screen_on

        tags: deque[T] = deque()  # of the chunks read and not yet decided

        def numbered() -> Iterator[tuple[int, list[Any]]]:
            base = self._next
            for tag, chunk in chunks:
                tags.append(tag)
                yield base, list(chunk)
                base += len(chunk)

        for screened in screen_on(self.cluster, self.config, numbered()):
            yield tags.popleft(), self.decide(screened)

    def check_chunk(self, records: Sequence[Any]) -> list[RecordResult]:
        return self.decide(self.screener.screen(self._next, records))

    def decide(self, s: Screened) -> list[RecordResult]:
        """The findings that depend on the records before: exact duplicates, off-topic, near duplicates."""
        if s.base != self._next:
            raise ValueError(f"chunk at record {s.base} decided out of order (the next is {self._next})")
        self._next += len(s.hashes)
        found = [list(vs) for vs in s.found]
        for j, h in enumerate(s.hashes):
            dup = self.exact.check(h)
            if dup is not None:  # after the schema finding, before the PII one: the gates' order
                at = 1 if found[j] and found[j][0].gate == Gate.SCHEMA else 0
                found[j].insert(at, Verdict(s.base + j, h, Gate.EXACT_DUPLICATE, dup))
        if self.offtopic is not None:
            readable = [j for j, t in enumerate(s.texts) if t]
            for j, off in zip(readable, self.offtopic.check([s.texts[j] for j in readable]), strict=True):
                if off is not None:
                    found[j].append(Verdict(s.base + j, s.hashes[j], Gate.OFF_TOPIC, *off))
        eligible = [all(v.passed for v in vs) for vs in found]
        for j, near in enumerate(self.neardup.check(s.texts, s.stored_hashes, eligible, s.signatures)):
            if near is not None:
                found[j].append(Verdict(s.base + j, s.hashes[j], Gate.NEAR_DUPLICATE, near.reason, near.detail()))
        return [RecordResult(s.base + j, s.hashes[j], s.stored[j], tuple(found[j]), s.stored_hashes[j])
                for j in range(len(s.hashes))]


def check_records(records: Iterable[Any], config: GateConfig | None = None,
                  known_hashes: Container[bytes] = frozenset(), neardup_index: NearDupIndex | None = None,
                  offtopic: OffTopicGate | None = None, cluster: Cluster | None = None) -> Iterator[RecordResult]:
    """Run every gate over `records` (any iterable, read lazily) and yield one result per record, in order.

    `known_hashes` are the Datanet's record hashes and `neardup_index` its near-duplicate index; neither
    is modified (the batch keeps its own). `offtopic` is None until the Datanet has an embedding model.
    """
    return GateRunner(config, known_hashes, neardup_index, offtopic, cluster).run(records)
