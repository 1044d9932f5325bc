"""Quality gate: each heuristic rejects what it is for, and ordinary notes pass."""

from __future__ import annotations

import pytest

from ailedger.datanet.gates.quality import QualityBounds, QualityGate, char_counts, repetition
from ailedger.datanet.gates.verdict import QualityReason as Q
from ailedger.datanet.synth import generate
from ailedger.datanet.synth.writer import Writer

GOOD = ("Pat the salmon dry before it goes into the pan, or it will steam instead of brown. "
        "Rest it for five minutes after cooking so the juices settle back in.")

BAD = [
    ("ok thanks", Q.TOO_SHORT),
    ("word " * 3000, Q.TOO_LONG),
    ("great tip " * 20, Q.REPETITIVE),
    ("same line here\n" * 6 + "and one more different line", Q.REPETITIVE),
    ("hahahahahahahahahahahahaha that was funny indeed my friend", Q.REPETITIVE),
    ("#$%& !!?? ~~^^ @@## $$%% &&** (()) [[]] {{}} <<>> ||", Q.SYMBOLS),
    (GOOD.replace("salmon", "sal\u200bmon"), Q.INVISIBLE_CHARS),
    (GOOD.replace("pan", "pan\u202e"), Q.INVISIBLE_CHARS),
    (GOOD + "\x07", Q.INVISIBLE_CHARS),
    ("data: " + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 12 + "==", Q.NOT_TEXT),
    ("12 345 678 901 234 567 890 123 456 789 012 345 678 901 and 2", Q.NOT_TEXT),
]


@pytest.mark.parametrize(("text", "reason"), BAD)
def test_rejects(text: str, reason: Q) -> None:
    found = QualityGate().check(text)
    assert found is not None and found[0] == reason, found


@pytest.mark.parametrize("text", [GOOD, GOOD + "\r\n\tSecond paragraph, with tabs and a CRLF line end.",
                                  "Préchauffez le four à 180 °C ; ça sent bon. Ajoutez le beurre fondu ensuite.",
                                  "Mix 2 cups of flour with 1 tsp of salt (5 g) and 300 ml of water, then knead."])
def test_passes(text: str) -> None:
    assert QualityGate().check(text) is None


def test_synthetic_honest_records_pass_and_junk_fails() -> None:
    gate = QualityGate()
    records = list(generate(3000, seed=4))
    honest = [r for r in records if r.label == "honest"]
    junk = [r for r in records if r.label == "junk"]
    assert all(gate.check(r.record["text"] + "\n" + r.record["title"]) is None for r in honest)
    assert len(junk) > 30 and all(gate.check(r.record["text"] + "\n" + r.record["title"]) is not None for r in junk)


def test_bounds_are_settings() -> None:
    assert QualityGate(QualityBounds(min_chars=5)).check("ok thanks") is None
    code = QualityBounds(max_symbol_share=0.9, min_letter_share=0.3)
    assert QualityGate(code).check("a+b = c; d*e = f; (g - h) / i") is None
    with pytest.raises(ValueError):
        QualityBounds(min_chars=10, max_chars=5)
    assert QualityGate(QualityBounds(min_chars=0)).check("   ") is None


def test_ascii_fast_path_counts_like_the_regex_path() -> None:
    text = "abc!! \x01 def_ 12 \x7f"
    accented = text + " é"
    inv, sym, let = char_counts(text)
    inv2, sym2, let2 = char_counts(accented)
    assert (inv, sym, let + 1) == (inv2, sym2, let2)


def test_repetition_measure() -> None:
    assert repetition(GOOD) < 0.05
    assert repetition("a b c a b c a b c a b c") > 0.5
    assert Writer  # the junk writer lives beside the honest one
