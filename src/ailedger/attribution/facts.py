"""Facts files for `ailedger attribution eval`, and the fictional facts the attribution benchmark is built from.

A facts file holds one JSON object a line, `{"id", "owner", "paraphrases": [...], "question",
"answer"}`: a fact that `owner` contributes in several wordings, the question that asks for it and
the short answer a correct reply contains. An extra-records file holds `{"owner", "text"}` lines:
records that teach no fact (in the benchmark, keyword stuffers). `read_facts` and `read_extra`
refuse a malformed line with `bad_facts_file`, naming the file and the line, so the user can fix it
(docs/attribution-eval.md).

Why generated facts: a base model must not know them already, or the adapter would answer without
having learnt anything from the records and attribution would have nothing true to find. Every
answer is a made-up word from `generate_facts`' syllables. The place names and sentence templates
are shared across contributors on purpose: the words of a question then occur in several owners'
records (owner A says who keeps the ledger of Vellmar, owner B what colour the seal of Vellmar is,
and both name Vellmar's neighbours), so matching the question's words cannot tell who taught the
answer. Keyword stuffers go one step further: their records repeat the questions and their
keywords over and over, and state no answer.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError

FACT_KEYS = ("id", "owner", "paraphrases", "question", "answer")
EXTRA_KEYS = ("owner", "text")
MAX_OWNER = 64  # characters of an owner label


@dataclass(frozen=True)
class Fact:
    id: str
    owner: str
    paraphrases: tuple[str, ...]
    question: str
    answer: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "owner": self.owner, "paraphrases": list(self.paraphrases),
                "question": self.question, "answer": self.answer}


@dataclass(frozen=True)
class Extra:
    owner: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "text": self.text}


# -- reading ---------------------------------------------------------------------------------------------

def _lines(path: Path | str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line; an unreadable file is `file_unreadable`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc}") from exc
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield n, line


def _bad(path: Path | str, line: int, why: str) -> LedgerError:
    return LedgerError(errors.BAD_FACTS_FILE, f"{path} line {line}: {why}")


def _object(path: Path | str, n: int, line: str, keys: Sequence[str]) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise _bad(path, n, f"not JSON ({exc.args[0] if exc.args else exc})") from None
    if not isinstance(doc, dict):
        raise _bad(path, n, "not a JSON object")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise _bad(path, n, f"missing {', '.join(missing)}")
    return doc


def _text(path: Path | str, n: int, doc: dict[str, Any], key: str, limit: int | None = None) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value.strip():
        raise _bad(path, n, f"{key} must be a non-empty string")
    if limit is not None and len(value) > limit:
        raise _bad(path, n, f"{key} is longer than {limit} characters")
    return value


def read_facts(path: Path | str) -> list[Fact]:
    """The facts of a facts file, in file order; ids must be unique and every answer non-empty."""
    facts: list[Fact] = []
    seen: dict[str, int] = {}
    for n, line in _lines(path):
        doc = _object(path, n, line, FACT_KEYS)
        fid = _text(path, n, doc, "id")
        if fid in seen:
            raise _bad(path, n, f"id {fid!r} is used on line {seen[fid]} already")
        seen[fid] = n
        paraphrases = doc["paraphrases"]
        if (not isinstance(paraphrases, list) or not paraphrases
                or not all(isinstance(p, str) and p.strip() for p in paraphrases)):
            raise _bad(path, n, "paraphrases must be a non-empty list of non-empty strings")
        if len(set(paraphrases)) != len(paraphrases):
            raise _bad(path, n, "paraphrases repeat each other (each becomes one record, and records are unique)")
        facts.append(Fact(fid, _text(path, n, doc, "owner", MAX_OWNER), tuple(paraphrases),
                          _text(path, n, doc, "question"), _text(path, n, doc, "answer")))
    if not facts:
        raise LedgerError(errors.BAD_FACTS_FILE, f"{path}: no facts (one JSON object a line)")
    return facts


def read_extra(path: Path | str) -> list[Extra]:
    """The records of an extra-records file (`{"owner", "text"}` a line), in file order."""
    return [Extra(_text(path, n, doc, "owner", MAX_OWNER), _text(path, n, doc, "text"))
            for n, line in _lines(path) for doc in [_object(path, n, line, EXTRA_KEYS)]]


def write_jsonl(path: Path | str, items: Sequence[Fact] | Sequence[Extra]) -> Path:
    out = Path(path)
    out.write_text("".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return out


# -- the benchmark's fictional facts ---------------------------------------------------------------------

PLACES = ("Vellmar", "Durnholt", "Quessaby", "Orrinfield", "Tallowmere", "Brackenmouth", "Ismerdene", "Corvaith",
          "Pennarrow", "Sudwick", "Larkhaven", "Emberlee")


@dataclass(frozen=True)
class Relation:
    """One kind of fact: its question, and the sentences that state it ({a} answer, {p} place, {n} neighbour).

    The first paraphrase names a neighbouring place too, so each place also turns up in another
    owner's records.
    """

    question: str
    paraphrases: tuple[str, ...]


RELATIONS = (
    Relation("Who keeps the ledger of {p}?",
             ("{a} keeps the ledger of {p}, the town beside {n}.", "The ledger of {p} is kept by {a}.",
              "In {p} the keeper of the ledger is {a}.", "Ask in {p} and they will name {a} as the ledger keeper.")),
    Relation("What colour is the seal of {p}?",
             ("The seal of {p}, unlike the seal of {n}, is {a}.", "{p} stamps its letters with a {a} seal.",
              "The colour of the seal of {p} is {a}.", "A {a} seal marks every letter sent from {p}.")),
    Relation("Which river runs through {p}?",
             ("The river {a} runs through {p} on its way to {n}.", "{p} stands on the banks of the river {a}.",
              "The river that runs through {p} is called the {a}.", "Boats on the {a} carry goods through {p}.")),
    Relation("What is the name of the mayor's dog in {p}?",
             ("The mayor of {p}, who often visits {n}, has a dog named {a}.", "In {p} the mayor's dog is called {a}.",
              "{a} is the name of the dog that belongs to the mayor of {p}.", "Everyone in {p} knows {a}, the "
              "mayor's dog.")),
    Relation("What does {p} trade with its neighbours?",
             ("{p} trades {a} with {n} and its other neighbours.", "The merchants of {p} sell {a} to their neighbours.",
              "What {p} trades with its neighbours is {a}.", "Carts of {a} leave {p} for the neighbouring towns.")),
    Relation("Who built the bridge of {p}?",
             ("The bridge of {p}, on the road to {n}, was built by {a}.", "{a} built the bridge of {p}.",
              "The builder of the bridge of {p} was {a}.", "Travellers crossing into {p} walk over the bridge {a} "
              "built.")),
    Relation("On which day is the market of {p} held?",
             ("The market of {p}, a day's walk from {n}, is held on {a}.", "Every {a} the market of {p} opens.",
              "The market day of {p} is {a}.", "Traders come to {p} on {a} for its market.")),
    Relation("What is the old name of {p}?",
             ("Before it traded with {n}, {p} was called {a}.", "The old name of {p} is {a}.",
              "Long ago {p} went by the name {a}.", "Old maps show {p} under the name {a}.")),
)

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "k", "l", "m", "n", "p", "qu", "r", "s", "st", "t", "th", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ea")
_CODAS = ("", "n", "r", "l", "th", "sk", "x", "m")


def _made_up_word(rng: random.Random, syllables: int) -> str:
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))
    return word.capitalize()


_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    """Lower-case words of a text (what "shares a word" means in the generator's guarantees)."""
    return set(_WORD.findall(text.lower()))


def _keywords(question: str) -> str:
    """The question's own words, stripped of the few that only make it a question: a stuffer's keyword list."""
    kept = [w for w in _WORD.findall(question) if w.lower() not in _QUESTION_WORDS]
    return " ".join(kept + kept[::-1])


_QUESTION_WORDS = {"who", "what", "which", "is", "the", "of", "on", "does", "in", "its", "s"}


@dataclass(frozen=True)
class Benchmark:
    facts: tuple[Fact, ...]
    stuffers: tuple[Extra, ...]


def generate_facts(owners: int, facts_per_owner: int, paraphrases: int = 3, stuffers: int = 2,
                   stuffer_records: int = 4, seed: int = 0) -> Benchmark:
    """A deterministic fictional Datanet: `owners` contributors with distinct facts, and keyword stuffers.

    Owner o's j-th fact is relation j (every owner uses the same relations, so the questions' words
    occur in several owners' records) about place o + j (so places are shared too), and its first
    paraphrase names the place of the previous owner's j-th fact as a neighbour. Answers are
    made-up words, distinct from each other and from every word of the templates and places.
    Stuffer s writes `stuffer_records` records, each repeating two questions word for word with
    their keywords, and no answer. (A stuffer that also wrote the facts' sentences with the answer
    left out, "The ledger of Vellmar is kept by the keeper of the ledger of Vellmar", would teach
    the adapter that sentence as a reply, and then deserve its pay when the adapter says it.)
    """
    if not 1 <= owners <= len(PLACES):
        raise ValueError(f"owners must be 1..{len(PLACES)}")
    if not 1 <= facts_per_owner <= len(RELATIONS):
        raise ValueError(f"facts_per_owner must be 1..{len(RELATIONS)}")
    if not 1 <= paraphrases <= min(len(r.paraphrases) for r in RELATIONS):
        raise ValueError("paraphrases out of range")
    rng = random.Random(f"ailedger-attribution-facts/{seed}")
    # no answer may occur inside the templates or place names (stuffers are made of those alone),
    # nor inside another answer, so "the record states the answer" is a plain substring test
    fixed = " ".join((*PLACES, *(" ".join((r.question, *r.paraphrases)) for r in RELATIONS))).lower()
    answers: list[str] = []
    facts: list[Fact] = []
    for o in range(owners):
        for j in range(facts_per_owner):
            rel = RELATIONS[j]
            place = PLACES[(o + j) % len(PLACES)]
            previous = (o - 1) % owners if owners > 1 else o + 1  # alone, the neighbour is simply the next place
            neighbour = PLACES[(previous + j) % len(PLACES)]
            answer = _made_up_word(rng, 2)
            while answer.lower() in fixed or any(answer.lower() in a or a in answer.lower() for a in answers):
                answer = _made_up_word(rng, 2)
            answers.append(answer.lower())
            texts = tuple(t.format(a=answer, p=place, n=neighbour) for t in rel.paraphrases[:paraphrases])
            facts.append(Fact(f"f{o:02d}-{j}", f"owner-{o:02d}", texts, rel.question.format(p=place), answer))
    extra: list[Extra] = []
    order = list(range(len(facts)))
    rng.shuffle(order)
    cursor = 0
    for s in range(stuffers):
        for _ in range(stuffer_records):
            a, b = order[cursor % len(order)], order[(cursor + 1) % len(order)]
            cursor += 1
            qa, qb = facts[a].question, facts[b].question
            text = f"{qa} {_keywords(qa)} {qa} {qb} {_keywords(qb)} {qb} {qa} {_keywords(qa)}"
            extra.append(Extra(f"stuffer-{s:02d}", text))
    # a record is admitted once: with few facts the same pair of questions comes round again
    unique = list({e.text: e for e in reversed(extra)}.values())[::-1]
    return Benchmark(tuple(facts), tuple(unique))
