"""The quality gate: cheap heuristics that reject text no model should learn from.

Why heuristics and not a model: they run at tens of thousands of records a second, explain
themselves in one number each, and catch what spam and junk actually look like — padding that is
too short or too long, the same phrase pasted again and again, symbol soup, characters that hide
content from reviewers (zero-width, bidi overrides, control codes), and blobs of base64 or binary
that are not prose at all. Every bound is a per-Datanet setting; a code Datanet raises the symbol
share, a poetry Datanet lowers the repetition limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ailedger.datanet.gates.verdict import QualityReason

# Zero-width and joiner characters, bidi embeddings/overrides/isolates, line/paragraph separators,
# the BOM, and C0/C1 control codes other than tab, newline and carriage return.
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SYMBOL = re.compile(r"[^\w\s]")
_LETTERS = re.compile(r"[^\W\d_]+")
# ASCII fast path: bytes.translate deletes a class of bytes in one C loop, ten times faster than a regex.
_ASCII = [chr(c) for c in range(128)]
_NOT_INVISIBLE = bytes(c for c in range(128) if not _INVISIBLE.match(_ASCII[c]))
_NOT_SYMBOL = bytes(c for c in range(128) if not _SYMBOL.match(_ASCII[c]))
_NOT_LETTER = bytes(c for c in range(128) if not _ASCII[c].isalpha())


def char_counts(text: str) -> tuple[int, int, int]:
    """(invisible, symbol, letter) character counts, by the same classes on both paths."""
    if text.isascii():
        raw = text.encode()
        return (len(raw.translate(None, _NOT_INVISIBLE)), len(raw.translate(None, _NOT_SYMBOL)),
                len(raw.translate(None, _NOT_LETTER)))
    return (len(_INVISIBLE.findall(text)), len(_SYMBOL.findall(text)), sum(map(len, _LETTERS.findall(text))))


@dataclass(frozen=True)
class QualityBounds:
    min_chars: int = 20
    max_chars: int = 12_000
    max_repetition: float = 0.3  # share of word 3-grams (or lines) that repeat an earlier one
    max_symbol_share: float = 0.25  # share of non-space characters that are neither letters nor digits
    max_invisible: int = 0
    max_token_chars: int = 40  # longer whitespace-free tokens count as encoded data...
    max_long_token_share: float = 0.3  # ...when they make up more than this share of the text
    min_letter_share: float = 0.5  # of non-space characters

    def __post_init__(self) -> None:
        if not 0 <= self.min_chars <= self.max_chars or self.max_token_chars < 1:
            raise ValueError("quality bounds need 0 <= min_chars <= max_chars and max_token_chars >= 1")


def repetition(text: str) -> float:
    """The largest of: the share of word 3-grams seen before, the share of non-empty lines seen before,
    and 1 when a long token is made of at most four distinct characters ("hahahahahahahaha")."""
    words = text.lower().split()
    if words and max(map(len, words)) >= 16 and any(len(w) >= 16 and len(set(w)) <= 4 for w in words):
        return 1.0
    rep = 0.0
    if len(words) >= 5:
        rep = 1.0 - len(set(zip(words, words[1:], words[2:], strict=False))) / (len(words) - 2)
    lines = [s for s in (line.strip() for line in text.splitlines()) if s]
    if len(lines) >= 3:
        rep = max(rep, 1.0 - len(set(lines)) / len(lines))
    return rep


class QualityGate:
    def __init__(self, bounds: QualityBounds | None = None) -> None:
        self.bounds = bounds or QualityBounds()

    def check(self, text: str) -> tuple[QualityReason, str] | None:
        b = self.bounds
        invisible, symbol_count, letter_count = char_counts(text)
        if invisible > b.max_invisible:
            return QualityReason.INVISIBLE_CHARS, f"{invisible} invisible characters"
        stripped = text.strip()
        if len(stripped) < b.min_chars:
            return QualityReason.TOO_SHORT, f"{len(stripped)} characters, the minimum is {b.min_chars}"
        if len(stripped) > b.max_chars:
            return QualityReason.TOO_LONG, f"{len(stripped)} characters, the maximum is {b.max_chars}"
        tokens = stripped.split()
        nonspace = sum(map(len, tokens))
        if nonspace == 0:
            return None
        symbols = symbol_count / nonspace
        if symbols > b.max_symbol_share:
            return QualityReason.SYMBOLS, f"{symbols:.0%} symbols, the maximum is {b.max_symbol_share:.0%}"
        long_share = 0.0
        if max(map(len, tokens)) > b.max_token_chars:
            long_share = sum(len(t) for t in tokens if len(t) > b.max_token_chars) / nonspace
        if long_share > b.max_long_token_share:
            return QualityReason.NOT_TEXT, f"{long_share:.0%} of the text is in tokens over {b.max_token_chars} chars"
        letters = letter_count / nonspace
        if letters < b.min_letter_share:
            return QualityReason.NOT_TEXT, f"{letters:.0%} letters, the minimum is {b.min_letter_share:.0%}"
        rep = repetition(stripped)
        if rep > b.max_repetition:
            return QualityReason.REPETITIVE, f"{rep:.0%} repeated, the maximum is {b.max_repetition:.0%}"
        return None
