"""Contribution file readers: every format streams, every bad input names its file and line."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.core.errors import LedgerError
from ailedger.datanet.readers import read_records


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def codes(path: Path, **kw: object) -> tuple[str, str]:
    with pytest.raises(LedgerError) as info:
        list(read_records(path, **kw))  # type: ignore[arg-type]
    return info.value.code.name, info.value.detail


def test_jsonl_csv_txt_parquet(tmp_path: Path) -> None:
    j = write(tmp_path, "a.jsonl", b'{"text": "one"}\n\n{"text": "two", "n": 2}\n')
    assert [(r.line, r.record) for r in read_records(j)] == [(1, {"text": "one"}), (3, {"text": "two", "n": 2})]
    c = write(tmp_path, "a.csv", b'q,a\n"hi, there",yes\nsecond,"multi\nline"\n')
    assert [r.record for r in read_records(c)] == [{"q": "hi, there", "a": "yes"}, {"q": "second", "a": "multi\nline"}]
    t = write(tmp_path, "a.txt", b"first para\nstill first\n\nsecond\n")
    assert [r.record["text"] for r in read_records(t)] == ["first para", "still first", "second"]
    assert [(r.line, r.record["text"]) for r in read_records(t, txt_mode="paragraph")] == [
        (1, "first para\nstill first"), (4, "second")]
    pq.write_table(pa.table({"text": ["x", "y"], "score": [1, 2]}), tmp_path / "a.parquet")
    assert [r.record for r in read_records(tmp_path / "a.parquet")] == [{"text": "x", "score": 1},
                                                                         {"text": "y", "score": 2}]


def test_bad_inputs_name_file_and_line(tmp_path: Path) -> None:
    code, detail = codes(write(tmp_path, "b.jsonl", b'{"text": "ok"}\n{"text": \n'))
    assert code == "bad_record_file" and "b.jsonl:2" in detail
    code, detail = codes(write(tmp_path, "c.jsonl", b'{"text": "ok"}\n[1, 2]\n'))
    assert code == "bad_record_file" and "c.jsonl:2" in detail
    code, detail = codes(write(tmp_path, "d.jsonl", b'{"text": "ok"}\n{"text": "\xff\xfe"}\n'))
    assert code == "not_utf8" and "d.jsonl:2" in detail
    assert codes(write(tmp_path, "e.jsonl", b""))[0] == "empty_file"
    assert codes(write(tmp_path, "f.jsonl", b"\n\n  \n"))[0] == "empty_file"
    code, detail = codes(write(tmp_path, "g.jsonl", b'{"t": 1}\n' + b'{"t": "' + b"x" * 5000 + b'"}\n'),
                         max_line_bytes=1000)
    assert code == "line_too_long" and "g.jsonl:2" in detail
    assert codes(write(tmp_path, "h.docx", b"x"))[0] == "unsupported_format"
    code, detail = codes(write(tmp_path, "i.csv", b"a,b\n1,2\n3\n"))
    assert code == "bad_record_file" and "i.csv:3" in detail
    assert codes(write(tmp_path, "j.parquet", b"not parquet at all"))[0] == "bad_record_file"
    assert codes(tmp_path / "missing.jsonl")[0] == "file_unreadable"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=20) | st.integers(), max_size=4),
                min_size=1, max_size=20))
def test_jsonl_round_trip(tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, object]]) -> None:
    p = tmp_path_factory.mktemp("rt") / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert [r.record for r in read_records(p)] == records


def test_memory_is_flat_in_file_size(tmp_path: Path) -> None:
    def peak(n: int) -> int:
        p = tmp_path / f"m{n}.jsonl"
        with open(p, "w") as f:
            for i in range(n):
                f.write(json.dumps({"text": f"record number {i} " + "word " * 20}) + "\n")
        tracemalloc.start()
        count = sum(1 for _ in read_records(p))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == n
        return top

    small, large = peak(2_000), peak(40_000)
    assert large < small * 2 + 200_000
