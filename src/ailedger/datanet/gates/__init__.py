"""The automatic gates a contribution passes before any validator sees it.

Each gate is a module named after its concept (schema, exact, neardup, pii, quality, offtopic);
`verdict` holds their stable numbers and sentences, `records` the canonical bytes and hash of a
record, and `runner` runs them all over a stream. Import from here for the common names.
"""

from ailedger.datanet.gates.lsh import NearDupIndex
from ailedger.datanet.gates.offtopic import OffTopicGate
from ailedger.datanet.gates.quality import QualityBounds
from ailedger.datanet.gates.records import canonical_record, record_hash, record_text
from ailedger.datanet.gates.runner import GateConfig, GateRunner, RecordResult, check_records
from ailedger.datanet.gates.verdict import GATES, REASONS, Gate, Verdict, describe

__all__ = [
    "GATES", "REASONS", "Gate", "GateConfig", "GateRunner", "NearDupIndex", "OffTopicGate", "QualityBounds",
    "RecordResult", "Verdict", "canonical_record", "check_records", "describe", "record_hash", "record_text",
]
