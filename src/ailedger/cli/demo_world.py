"""The people and the records of `ailedger demo`, and the rule its validators vote by.

Why a fixed cast: the demo must show the core loop end to end on a real ledger, including what the
ledger does to people who cheat. Three honest contributors each teach facts (the fictional facts of
`attribution.facts.generate_facts`, which the base model cannot know, so an answer that states one
was learnt from its contributor's records). A spammer submits near-copies of honest records (caught
by the near-duplicate gate), keyword stuffing (caught by the quality gate) and false versions of
honest facts, which pass every automatic gate because they are well-formed; the validators reject
those. A junk poster submits records leaking personal data (the PII gate) and noise (the quality
gate), written by the synthetic Datanet's writer (`datanet.synth.writer`). Everyone stakes on what
they contribute, so every rejected record costs its contributor the stake.

The validators' rule (`judge`) is written down here so it can be checked: a record must be a chat
exchange (one user question, one assistant statement), and when an accepted record already answers
the same question, the new record must state the same answer: every word that all accepted answers
to that question share, apart from the question's own words and a few common ones. A record that
leaves any of them out states another answer; it contradicts the Datanet and is voted down. (With
one accepted wording the shared words are that whole sentence, so the rule is strict: a validator
that cannot tell which word is the answer asks for all of them.) Honest validators in a real Datanet read the records;
the rule is what this demo's two validators read for.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.attribution.facts import Fact, generate_facts

HONEST = ("ada", "ben", "cleo")
SPAMMER, JUNK = "sam", "jun"
CONTRIBUTORS = (*HONEST, SPAMMER, JUNK)
CURATOR, BUILDER, PROVIDER, CONSUMER = "curator", "builder", "provider", "consumer"
VALIDATORS = ("val-1", "val-2")
PEOPLE = (CURATOR, *VALIDATORS, *CONTRIBUTORS, BUILDER, PROVIDER, CONSUMER)
ROLE = {CURATOR: "Datanet curator and gatekeeper", **{v: "validator" for v in VALIDATORS},
        **{h: "honest contributor" for h in HONEST}, SPAMMER: "spammer", JUNK: "junk and PII poster",
        BUILDER: "model builder", PROVIDER: "compute and serving provider", CONSUMER: "consumer"}

_WORD = re.compile(r"[a-z0-9']+")
_COMMON = frozenset({"a", "an", "and", "as", "at", "by", "for", "from", "in", "is", "it", "its", "of", "on", "or",
                     "the", "to", "was", "who", "what", "which"})


@dataclass(frozen=True)
class Contribution:
    """One person's file of records, and what the demo expects the Datanet to do with it."""

    person: str
    records: tuple[dict[str, Any], ...]
    kind: str  # "honest", "near-copy", "stuffing", "false fact", "pii", "junk"


@dataclass(frozen=True)
class Cast:
    facts: tuple[Fact, ...]  # the honest facts; fact.owner is the contributor's name
    honest: tuple[Contribution, ...]
    bad: tuple[Contribution, ...]  # contributed after the honest records are accepted
    questions: tuple[Fact, ...]  # what the consumer asks

    def all(self) -> tuple[Contribution, ...]:
        return (*self.honest, *self.bad)


def chat(question: str, answer: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def cast(facts_per_owner: int = 4, paraphrases: int = 3, questions_per_owner: int = 2, seed: int = 0) -> Cast:
    """The demo's Datanet contributions, deterministic for a seed."""
    from ailedger.datanet.synth.writer import Writer

    bench = generate_facts(len(HONEST), facts_per_owner, paraphrases, stuffers=1, stuffer_records=3, seed=seed)
    named = {f"owner-{i:02d}": name for i, name in enumerate(HONEST)}
    facts = tuple(Fact(f.id, named[f.owner], f.paraphrases, f.question, f.answer) for f in bench.facts)
    honest = tuple(Contribution(name, tuple(chat(f.question, p) for f in facts if f.owner == name
                                            for p in f.paraphrases), "honest") for name in HONEST)
    rng = random.Random(f"ailedger-demo/{seed}")
    writer = Writer(rng)
    # near-copies: an honest record re-posted with its case and punctuation changed (new bytes, so a new hash;
    # the near-duplicate gate normalises both away)
    copies = tuple(chat(f.question.lower(), f.paraphrases[0].upper().replace(".", "!!")) for f in facts[::3])
    stuffing = tuple({"text": e.text} for e in bench.stuffers)
    false = tuple(chat(f.question, f.paraphrases[-1].replace(f.answer, "Samsworth")) for f in facts[1::3])
    pii = tuple(chat(f.question, f"{f.paraphrases[0]} {writer.pii(kind)}")
                for f, kind in zip(facts[2::3], ("email", "phone", "card", "iban"), strict=False))
    junk = tuple(writer.junk(kind) for kind in ("repetitive", "symbols", "too_short"))
    bad = (Contribution(SPAMMER, copies, "near-copy"), Contribution(SPAMMER, stuffing, "stuffing"),
           Contribution(SPAMMER, false, "false fact"), Contribution(JUNK, pii, "pii"),
           Contribution(JUNK, junk, "junk"))
    asked = tuple(f for name in HONEST for f in [g for g in facts if g.owner == name][:questions_per_owner])
    return Cast(facts, honest, bad, asked)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def exchange(record: Any) -> tuple[str, str] | None:
    """(question, answer) of a one-turn chat record; None for anything else."""
    if not isinstance(record, dict) or set(record) != {"messages"}:
        return None
    turns = record["messages"]
    if not isinstance(turns, list) or len(turns) != 2:
        return None
    roles = [t.get("role") if isinstance(t, dict) else None for t in turns]
    texts = [t.get("content") if isinstance(t, dict) else None for t in turns]
    if roles != ["user", "assistant"] or not all(isinstance(t, str) and t.strip() for t in texts):
        return None
    question, answer = str(texts[0]), str(texts[1])
    if not question.rstrip().endswith("?") or "?" in answer:
        return None
    return question, answer


class Validator:
    """The demo validators' rule (module docstring), over the records the Datanet has accepted so far."""

    def __init__(self, accepted: Iterable[Any] = ()) -> None:
        self.answers: dict[str, set[str]] = {}  # normalised question -> words every accepted answer shares
        for record in accepted:
            self.learn(record)

    def learn(self, record: Any) -> None:
        pair = exchange(record)
        if pair is None:
            return
        question, answer = pair
        key = " ".join(sorted(_words(question)))
        said = _words(answer) - _words(question) - _COMMON
        self.answers[key] = self.answers[key] & said if key in self.answers else said

    def judge(self, record: Any) -> tuple[bool, str]:
        """(accept, why)."""
        pair = exchange(record)
        if pair is None:
            return False, "not a one-turn question and answer"
        question, answer = pair
        known = self.answers.get(" ".join(sorted(_words(question))))
        if known and not known <= _words(answer):
            return False, f"contradicts the accepted answer ({', '.join(sorted(known))})"
        return True, "states an answer consistent with the Datanet"


def judge_all(validator: Validator, records: Sequence[Any]) -> list[tuple[bool, str]]:
    return [validator.judge(r) for r in records]
