"""Streaming readers for contribution files: .jsonl, .csv, .txt (per line or per paragraph), .parquet.

Why streaming: a contributor's file may hold millions of records; each reader yields one record at
a time (parquet: one row group batch at a time), so memory stays flat whatever the file's size.
Every problem names the file and the line (or row) so the contributor can fix it: malformed JSON,
a non-object line, bytes that are not UTF-8, an over-long line, an empty file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.core.jsondoc import parse_object

FORMATS = ("jsonl", "csv", "txt", "parquet")
MAX_LINE_BYTES = 1 << 20
TxtMode = Literal["line", "paragraph"]


@dataclass(frozen=True)
class SourceRecord:
    """A record and where it came from (1-based line, or row for csv/parquet)."""

    line: int
    record: dict[str, Any]


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"json": "jsonl", "ndjson": "jsonl", "jsonl": "jsonl", "csv": "csv", "txt": "txt", "text": "txt",
           "parquet": "parquet", "pq": "parquet"}.get(suffix)
    if fmt is None:
        raise LedgerError(errors.UNSUPPORTED_FORMAT, f"{path} (suffix {path.suffix!r})")
    return fmt


def read_records(path: Path | str, fmt: str | None = None, txt_mode: TxtMode = "line",
                 max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[SourceRecord]:
    """Yield the file's records in order; raises a LedgerError naming file and line on bad input."""
    p = Path(path)
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise LedgerError(errors.UNSUPPORTED_FORMAT, fmt)
    try:
        if p.stat().st_size == 0:
            raise LedgerError(errors.EMPTY_FILE, str(p))
    except OSError as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{p}: {exc}") from exc
    readers = {"jsonl": _jsonl, "csv": _csv, "txt": _txt, "parquet": _parquet}
    count = 0
    for item in readers[fmt](p, txt_mode, max_line_bytes):
        count += 1
        yield item
    if count == 0:
        raise LedgerError(errors.EMPTY_FILE, f"{p} holds no records")


def _lines(path: Path, max_line_bytes: int) -> Iterator[tuple[int, str]]:
    """Decoded lines with their numbers; the line limit is checked before decoding."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if len(raw) > max_line_bytes:
                raise LedgerError(errors.LINE_TOO_LONG, f"{path}:{n}: {len(raw)} bytes > {max_line_bytes}")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise LedgerError(errors.NOT_UTF8, f"{path}:{n}: byte {exc.start}") from exc
            yield n, text.rstrip("\r\n")


def _jsonl(path: Path, _mode: TxtMode, max_line_bytes: int) -> Iterator[SourceRecord]:
    for n, line in _lines(path, max_line_bytes):
        if not line.strip():
            continue
        yield SourceRecord(n, parse_object(line, errors.BAD_RECORD_FILE, f"{path}:{n}"))


def _txt(path: Path, mode: TxtMode, max_line_bytes: int) -> Iterator[SourceRecord]:
    if mode == "line":
        for n, line in _lines(path, max_line_bytes):
            if line.strip():
                yield SourceRecord(n, {"text": line.strip()})
        return
    para: list[str] = []
    start = 0
    for n, line in _lines(path, max_line_bytes):
        if line.strip():
            if not para:
                start = n
            para.append(line.strip())
            if sum(len(x) for x in para) > max_line_bytes:
                raise LedgerError(errors.LINE_TOO_LONG, f"{path}:{start}: paragraph exceeds {max_line_bytes} bytes")
        elif para:
            yield SourceRecord(start, {"text": "\n".join(para)})
            para = []
    if para:
        yield SourceRecord(start, {"text": "\n".join(para)})


def _csv(path: Path, _mode: TxtMode, max_line_bytes: int) -> Iterator[SourceRecord]:
    def decoded() -> Iterator[str]:
        for _, line in _lines(path, max_line_bytes):
            yield line + "\n"

    reader = csv.DictReader(decoded(), strict=True)
    try:
        if not reader.fieldnames:
            raise LedgerError(errors.BAD_RECORD_FILE, f"{path}:1: a CSV file needs a header row")
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise LedgerError(errors.BAD_RECORD_FILE,
                                  f"{path}:{reader.line_num}: the row's field count differs from the header")
            yield SourceRecord(reader.line_num, dict(row))
    except csv.Error as exc:
        raise LedgerError(errors.BAD_RECORD_FILE, f"{path}:{reader.line_num}: {exc}") from exc


def _parquet(path: Path, _mode: TxtMode, _max: int) -> Iterator[SourceRecord]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for damaged files
        raise LedgerError(errors.BAD_RECORD_FILE, f"{path}: not a readable parquet file ({exc})") from exc
    row = 0
    for batch in pf.iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            row += 1
            yield SourceRecord(row, {k: _plain(v) for k, v in rec.items()})


def _plain(v: Any) -> Any:
    """Parquet values as JSON-able Python values (bytes become UTF-8 text where they are text)."""
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return v.hex()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, int | float | str | bool) or v is None:
        return v
    return str(v)


def write_jsonl(records: Iterator[dict[str, Any]], out: io.TextIOBase | Any) -> int:
    n = 0
    for r in records:
        out.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n
