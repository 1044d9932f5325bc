"""Facts files and the benchmark's fictional facts: parsing with coded errors, and the generator's guarantees.

The generator must be deterministic (the benchmark's figures are reproducible), must share its
vocabulary across owners (so matching a question's words cannot name who taught the answer) and
must never let a keyword stuffer state an answer (or the stuffer would deserve its pay).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.attribution.facts import (
    PLACES,
    Extra,
    generate_facts,
    read_extra,
    read_facts,
    words,
    write_jsonl,
)
from ailedger.core import errors
from ailedger.core.errors import LedgerError

SIZES = st.tuples(st.integers(2, 8), st.integers(1, 5), st.integers(1, 4), st.integers(0, 3), st.integers(1, 5),
                  st.integers(0, 2**32))
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SLOW
@given(SIZES)
def test_generator_is_deterministic_and_distinct(sizes: tuple[int, int, int, int, int, int]) -> None:
    owners, per, para, stuffers, records, seed = sizes
    a, b = generate_facts(owners, per, para, stuffers, records, seed), generate_facts(owners, per, para, stuffers,
                                                                                        records, seed)
    assert a == b
    assert len(a.facts) == owners * per and all(len(f.paraphrases) == para for f in a.facts)
    answers = [f.answer.lower() for f in a.facts]
    assert len(set(answers)) == len(answers)  # every fact has its own answer
    assert all(f.answer in p for f in a.facts for p in f.paraphrases)  # every paraphrase states it
    texts = [p for f in a.facts for p in f.paraphrases] + [e.text for e in a.stuffers]
    assert len(set(texts)) == len(texts)  # each becomes one record, and a record is admitted once
    assert {f.owner for f in a.facts} == {f"owner-{o:02d}" for o in range(owners)}
    assert {e.owner for e in a.stuffers} <= {f"stuffer-{s:02d}" for s in range(stuffers)}
    if seed < 2**32:
        other = generate_facts(owners, per, para, stuffers, records, seed + 1)
        assert [f.answer for f in other.facts] != [f.answer for f in a.facts]


@SLOW
@given(SIZES)
def test_question_words_appear_in_several_owners_records(sizes: tuple[int, int, int, int, int, int]) -> None:
    owners, per, para, stuffers, records, seed = sizes
    bench = generate_facts(owners, per, para, stuffers, records, seed)
    vocabulary: dict[str, set[str]] = {}
    for f in bench.facts:
        for p in f.paraphrases:
            for w in words(p):
                vocabulary.setdefault(w, set()).add(f.owner)
    for f in bench.facts:
        content = words(f.question) - {"who", "what", "which", "is", "the", "of", "on", "does", "in", "its"}
        shared = {w for w in content if len(vocabulary.get(w, set())) >= 2}
        place = [w for w in content if w in {x.lower() for x in PLACES}]
        assert place and set(place) <= shared, (f.question, place)  # the place is named by another owner too
        assert len(shared) >= 2, f.question  # and so are the words of the question's relation


@SLOW
@given(SIZES)
def test_stuffers_repeat_questions_but_never_state_an_answer(sizes: tuple[int, int, int, int, int, int]) -> None:
    owners, per, para, stuffers, records, seed = sizes
    bench = generate_facts(owners, per, para, stuffers, records, seed)
    questions = {f.question for f in bench.facts}
    for e in bench.stuffers:
        assert not any(f.answer.lower() in e.text.lower() for f in bench.facts), e.text
        assert sum(q in e.text for q in questions) >= 1  # it does repeat questions, word for word
        assert e.owner.startswith("stuffer-") and e.owner not in {f.owner for f in bench.facts}


def test_round_trip(tmp_path: Path) -> None:
    bench = generate_facts(3, 2, 3, 2, 2, seed=4)
    assert read_facts(write_jsonl(tmp_path / "facts.jsonl", bench.facts)) == list(bench.facts)
    assert read_extra(write_jsonl(tmp_path / "extra.jsonl", bench.stuffers)) == list(bench.stuffers)


GOOD = {"id": "a", "owner": "alice", "paraphrases": ["Orla keeps it.", "It is kept by Orla."],
        "question": "Who keeps it?", "answer": "Orla"}
BAD_LINES = [
    "{not json",
    "[1, 2]",
    json.dumps({k: v for k, v in GOOD.items() if k != "answer"}),
    json.dumps({**GOOD, "paraphrases": []}),
    json.dumps({**GOOD, "paraphrases": "Orla keeps it."}),
    json.dumps({**GOOD, "paraphrases": ["x", ""]}),
    json.dumps({**GOOD, "paraphrases": ["x", "x"]}),
    json.dumps({**GOOD, "question": 3}),
    json.dumps({**GOOD, "owner": "   "}),
    json.dumps({**GOOD, "owner": "o" * 65}),
    json.dumps({**GOOD, "answer": ""}),
    json.dumps(GOOD),  # a second fact with the same id
]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_malformed_fact_names_file_and_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + bad + "\n")  # the blank line is skipped but counted
    with pytest.raises(LedgerError) as exc:
        read_facts(path)
    assert exc.value.code is errors.BAD_FACTS_FILE
    assert f"{path} line 3" in exc.value.detail


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(BAD_LINES[:-1]), min_size=1, max_size=3), st.integers(0, 4))
def test_first_malformed_line_is_the_one_named(tmp_path: Path, bad: list[str], good_before: int) -> None:
    path = tmp_path / "facts.jsonl"
    lines = [json.dumps({**GOOD, "id": f"g{i}"}) for i in range(good_before)] + bad
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerError) as exc:
        read_facts(path)
    assert exc.value.code is errors.BAD_FACTS_FILE and f"line {good_before + 1}:" in exc.value.detail


def test_extra_records_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "extra.jsonl"
    path.write_text(json.dumps({"owner": "s", "text": "Who keeps it? Who keeps it?"}) + "\n" +
                    json.dumps({"owner": "s"}) + "\n")
    with pytest.raises(LedgerError) as exc:
        read_extra(path)
    assert exc.value.code is errors.BAD_FACTS_FILE and "line 2: missing text" in exc.value.detail
    path.write_text(json.dumps({"owner": "s", "text": "Who keeps it?"}) + "\n")
    assert read_extra(path) == [Extra("s", "Who keeps it?")]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(LedgerError) as exc:
        read_facts(empty)
    assert exc.value.code is errors.BAD_FACTS_FILE
    with pytest.raises(LedgerError) as exc:
        read_facts(tmp_path / "missing.jsonl")
    assert exc.value.code is errors.FILE_UNREADABLE
