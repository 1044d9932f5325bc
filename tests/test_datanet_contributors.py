"""A version's records with their contributors, a page at a time, on the embedded backend and over HTTP.

An attribution bundle maps each record of the snapshot its adapter learnt from to the address paid
for it; this view is where that map comes from, so both backends must agree on every page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ailedger.api.client import HttpClient
from ailedger.cli.backend import Embedded
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet import payloads as p
from ailedger.datanet.gates.records import record_hash
from ailedger.datanet.pipeline import contribute
from ailedger.datanet.synth import SynthMix, generate
from tests.conftest_api import serve_in_thread
from tests.test_datanet_pipeline import C1, C2, OWNER, V1, backend, create, data_dir, send, write_jsonl

__all__ = ["backend", "data_dir"]


def test_version_contributors_pages_agree_on_both_backends(backend: Embedded, tmp_path: Path) -> None:
    create(backend, window=4)
    send(backend, V1, p.REGISTER_VALIDATOR, p.Named("cook"), p.NAMED_CODEC)
    records = [s.record for s in generate(7, 5, SynthMix(0, 0, 0, 0, 0, 0))]
    contribute(write_jsonl(tmp_path / "a.jsonl", records[:4]), "cook", C1, backend)
    contribute(write_jsonl(tmp_path / "b.jsonl", records[4:]), "cook", C2, backend)
    pending = [bytes.fromhex(r["hash"]) for r in backend.datanet_pending("cook")["records"]]
    send(backend, V1, p.VOTE, p.VoteBatch("cook", [p.Ballot(h, 1) for h in pending]), p.VOTE_CODEC)
    for _ in range(6):  # each snapshot is a block: the window ends and the accepted records join a version
        send(backend, OWNER, p.SNAPSHOT, p.Named("cook"), p.NAMED_CODEC)
    number = backend.datanet("cook")["versions"][-1]["version"]
    owner_of = {record_hash(r).hex(): (C1 if i < 4 else C2).address_text for i, r in enumerate(records)}
    order = backend.datanet_version("cook", number)["hashes"]
    assert len(order) == 7
    with serve_in_thread(backend.node) as url, HttpClient(url) as http:
        for side in (backend, http):
            pairs: list[list[str]] = []
            offset: int | None = 0
            while offset is not None:
                page = side.datanet_version_contributors("cook", number, offset, 3)
                assert page["datanet"] == "cook" and page["version"] == number and len(page["records"]) <= 3
                pairs += page["records"]
                offset = page["next_offset"]
            assert [h for h, _ in pairs] == order  # the version's own order
            assert {h: a for h, a in pairs} == owner_of
        assert http.datanet_version_contributors("cook", number) == backend.datanet_version_contributors("cook", number)
        assert backend.datanet_version_contributors("cook", number, 7, 3) == {**backend.datanet_version_contributors(
            "cook", number, 7, 3), "records": [], "next_offset": None}
        bad: list[tuple[tuple[Any, ...], str]] = [
            (("nope", 1), "datanet_not_found"), (("cook", number + 1), "version_not_found"),
            (("cook", 0), "version_not_found"),
            (("cook", number, -1, 3), "bad_request"), (("cook", number, 0, 0), "bad_request"),
        ]
        for args, code in bad:
            for side in (http, backend):
                with pytest.raises(LedgerError) as caught:
                    side.datanet_version_contributors(*args)
                assert caught.value.code.name == code, (args, side)
    assert errors.VERSION_NOT_FOUND.http_status == 404
