"""The PII gate: e-mail addresses, phone numbers, card numbers, IBANs, API keys and private keys.

Why patterns plus checks: a record that leaks someone's card or a live token must never earn, but
a recipe that says "on 2024-01-15 at 12:30" or "version 10.0.19041.1" must not be rejected either.
So each detector is a shape (regex with boundaries that refuse to start or end inside a longer
number) and, where one exists, a check: Luhn and issuer prefix for cards, mod-97 and country
length for IBANs, digit counts for phones, entropy for generic secrets. Phone numbers need a "+"
country code, US-style grouping, or a 0 trunk prefix with separators: bare digit runs are order
numbers as often as phones. UUIDs are identifiers, never secrets.

Policy per Datanet: "reject" fails the record; "redact" replaces each finding with a tag such as
[EMAIL] and lets the record pass. Details name kinds and counts, never the PII itself, because
verdicts are posted on a public ledger.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ailedger.datanet.gates.checksums import card_prefix_ok, iban_valid, luhn_valid
from ailedger.datanet.gates.verdict import PiiReason

Policy = Literal["reject", "redact"]

TAGS: dict[PiiReason, str] = {
    PiiReason.EMAIL: "[EMAIL]", PiiReason.PHONE: "[PHONE]", PiiReason.CARD: "[CARD]", PiiReason.IBAN: "[IBAN]",
    PiiReason.API_KEY: "[SECRET]", PiiReason.PRIVATE_KEY: "[SECRET]",
}
# Most severe first: this order picks the verdict's reason and wins when two findings overlap.
SEVERITY = (PiiReason.PRIVATE_KEY, PiiReason.API_KEY, PiiReason.IBAN, PiiReason.CARD, PiiReason.EMAIL,
            PiiReason.PHONE)
_RANK = {kind: i for i, kind in enumerate(SEVERITY)}

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
                    r"(?![\w-])")
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d(?:[ .\-()]{0,2}\d){7,16}(?![\w])")
_PHONE_US = re.compile(r"(?<![\w+.\-/])(?<!\d[ -])(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}(?!\w|[-./:]\d)")
_PHONE_TRUNK = re.compile(r"(?<![\w+.\-/])(?<!\d[ -])0\d{1,4}(?:[ -]\d{2,8}){1,4}(?!\w|[-./: ]\d)")
_CARD = re.compile(r"(?<![\w\-.])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?!\w|[-.]\d|[ -]\d{3})")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_API_KEY = re.compile(
    r"\b(?:(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"
    r"|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,255}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,255}"
    r"|xox[bapsr]-[A-Za-z0-9\-]{10,255}|AIza[0-9A-Za-z_\-]{35})(?![\w-])")
_ASSIGNMENT = re.compile(
    r"(?i)\b(?:api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|(?:access|auth|api|bearer|refresh)?"
    r"[_-]?token|passw(?:or)?d)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9_\-+/=.~]{16,256})")
_PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----(?:.{0,20000}?-----END \1PRIVATE KEY-----)?",
                          re.DOTALL)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True, order=True)
class Finding:
    start: int
    end: int
    kind: PiiReason


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def _card_ok(s: str) -> bool:
    seps = {ch for ch in s if not ch.isdigit()}
    digits = _digits(s)
    return len(seps) <= 1 and card_prefix_ok(digits) and luhn_valid(digits)


def _secret_ok(value: str) -> bool:
    """A generic assigned value counts as a secret when it looks random: mixed classes and high entropy."""
    if _UUID.fullmatch(value):
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))
    return classes >= 2 and _entropy(value) >= 3.5


_Check = Callable[[str], bool]
_DETECTORS: tuple[tuple[PiiReason, re.Pattern[str], _Check | None], ...] = (
    (PiiReason.PRIVATE_KEY, _PRIVATE_KEY, None),
    (PiiReason.API_KEY, _API_KEY, None),
    (PiiReason.IBAN, _IBAN, iban_valid),
    (PiiReason.CARD, _CARD, _card_ok),
    (PiiReason.EMAIL, _EMAIL, None),
    (PiiReason.PHONE, _PHONE_INTL, lambda s: 9 <= len(_digits(s)) <= 15),
    (PiiReason.PHONE, _PHONE_US, None),
    (PiiReason.PHONE, _PHONE_TRUNK, lambda s: 10 <= len(_digits(s)) <= 11),
)
_DIGITS = b"0123456789"


def _worth_trying(text: str) -> list[bool]:
    """Which detectors can match at all, by cheap substring tests (each regex scan costs 5-15 us).

    Phones, cards and IBANs all hold at least nine digits; every API-key shape has a fixed prefix
    or an underscore. On non-ASCII text the digit count is skipped (\\d matches other scripts' digits).
    """
    many_digits = not text.isascii() or len(text) - len(text.encode().translate(None, _DIGITS)) >= 9
    keyish = ("_" in text or "sk-" in text or "xox" in text or "AIza" in text or "AKIA" in text
              or "ASIA" in text)
    return ["PRIVATE KEY" in text, keyish, many_digits, many_digits, "@" in text, many_digits and "+" in text,
            many_digits, many_digits]


def _assignment_possible(text: str) -> bool:
    if "=" not in text and ":" not in text:
        return False
    low = text.lower()
    return "key" in low or "token" in low or "secret" in low or "passw" in low


def find_pii(text: str) -> list[Finding]:
    """Non-overlapping findings sorted by position; where two overlap the more severe kind wins."""
    found: list[Finding] = []
    for (kind, pattern, check), worth in zip(_DETECTORS, _worth_trying(text), strict=True):
        if worth:
            for m in pattern.finditer(text):
                if check is None or check(m.group()):
                    found.append(Finding(m.start(), m.end(), kind))
    if _assignment_possible(text):
        for m in _ASSIGNMENT.finditer(text):
            if _secret_ok(m.group(1)):
                found.append(Finding(m.start(1), m.end(1), PiiReason.API_KEY))
    if len(found) < 2:
        return found
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (_RANK[f.kind], f.start)):
        if all(f.end <= k.start or k.end <= f.start for k in kept):
            kept.append(f)
    return sorted(kept)


def redact(text: str, findings: Sequence[Finding]) -> str:
    out, pos = [], 0
    for f in sorted(findings):
        out += [text[pos:f.start], TAGS[f.kind]]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True)
class PiiResult:
    reason: PiiReason  # the most severe kind found
    detail: str  # kinds and counts, never the values
    redacted: Any  # the record with every finding replaced, when the policy is "redact"; else None


class PiiGate:
    def __init__(self, policy: Policy = "reject", fields: Sequence[str] | None = None) -> None:
        if policy not in ("reject", "redact"):
            raise ValueError(f"unknown PII policy {policy!r}")
        self.policy, self.fields = policy, fields

    def check(self, record: dict[str, Any]) -> PiiResult | None:
        counts: Counter[PiiReason] = Counter()

        def visit(value: Any) -> Any:
            if isinstance(value, str):
                findings = find_pii(value)
                counts.update(f.kind for f in findings)
                return redact(value, findings) if findings else value
            if isinstance(value, dict):
                return {k: visit(v) for k, v in value.items()}
            if isinstance(value, list):
                return [visit(v) for v in value]
            return value

        scanned = {k: (visit(v) if self.fields is None or k in self.fields else v) for k, v in record.items()}
        if not counts:
            return None
        reason = min(counts, key=_RANK.__getitem__)
        detail = ", ".join(f"{counts[k]} {k.name.lower()}" for k in SEVERITY if counts[k])
        return PiiResult(reason, detail, scanned if self.policy == "redact" else None)
