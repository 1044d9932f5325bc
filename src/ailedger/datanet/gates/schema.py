"""The schema gate: a record must be a JSON object, match the Datanet's JSON Schema, and fit the size cap.

Why compile once: building a Draft 2020-12 validator parses and checks the schema, which costs far
more than validating one record; a Datanet's schema is fixed, so one validator serves every record.
`is_valid` is tried first because collecting errors is slower and only the failures need them.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.gates.verdict import SchemaReason

DEFAULT_MAX_RECORD_BYTES = 16 * 1024


def _path(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


class SchemaGate:
    def __init__(self, schema: dict[str, Any] | None = None,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        if max_record_bytes < 2:
            raise LedgerError(errors.BAD_GATE_CONFIG, "max_record_bytes must be at least 2")
        self.max_record_bytes = max_record_bytes
        self._validator: Draft202012Validator | None = None
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise LedgerError(errors.BAD_SCHEMA, f"{_path(exc.absolute_path)}: {exc.message}") from exc
            self._validator = Draft202012Validator(schema)

    def check(self, record: Any, canonical_size: int) -> tuple[SchemaReason, str] | None:
        """The failing reason with its detail, or None; `canonical_size` is len(canonical_record(record))."""
        if not isinstance(record, dict):
            return SchemaReason.NOT_OBJECT, f"got a JSON {type(record).__name__}"
        if canonical_size > self.max_record_bytes:
            return SchemaReason.TOO_LARGE, f"{canonical_size} bytes, the limit is {self.max_record_bytes}"
        if self._validator is not None and not self._validator.is_valid(record):
            err = best_match(self._validator.iter_errors(record))
            if err is not None:
                return SchemaReason.SCHEMA_MISMATCH, f"{_path(err.absolute_path)}: {err.message}"
        return None
