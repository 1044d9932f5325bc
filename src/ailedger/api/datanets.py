"""Datanet and reputation routes: the JSON of `datanet.service`, served over HTTP.

Every route is a thin call into `DatanetReads`, so the embedded CLI (which calls the same object)
and a remote client see the same documents and the same errors. Paging follows the service:
`offset` and `limit` in the query, `next_offset` in the answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from ailedger.chain.node import Node
from ailedger.datanet.service import MAX_PAGE, MAX_PENDING_PAGE, DatanetReads

Offset = Annotated[int, Query(ge=0)]


class KnownBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    hashes: list[str]


def add_datanet_routes(app: FastAPI, node: Node) -> None:
    reads = DatanetReads(node)

    @app.get("/v1/datanets")
    def list_datanets() -> JSONResponse:
        return JSONResponse(reads.datanets())

    @app.get("/v1/datanets/{name}")
    def show_datanet(name: str) -> JSONResponse:
        return JSONResponse(reads.datanet(name))

    @app.get("/v1/datanets/{name}/records/{record_hash}")
    def show_record(name: str, record_hash: str) -> JSONResponse:
        return JSONResponse(reads.record(name, record_hash))

    @app.get("/v1/datanets/{name}/pending")
    def pending(name: str, limit: Annotated[int, Query(ge=1, le=MAX_PENDING_PAGE)] = 100,
                offset: Offset = 0) -> JSONResponse:
        return JSONResponse(reads.pending(name, limit, offset))

    @app.get("/v1/datanets/{name}/versions/{number}")
    def version(name: str, number: int, offset: Offset = 0,
                limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE) -> JSONResponse:
        return JSONResponse(reads.version(name, number, offset, limit))

    @app.get("/v1/datanets/{name}/versions/{number}/contributors")
    def version_contributors(name: str, number: int, offset: Offset = 0,
                             limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE) -> JSONResponse:
        """The version's [record_hash, contributor] pairs in its order (what an attribution bundle pays by)."""
        return JSONResponse(reads.version_contributors(name, number, offset, limit))

    @app.get("/v1/datanets/{name}/hashes")
    def hashes(name: str, status: str = "accepted", offset: Offset = 0,
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE) -> JSONResponse:
        return JSONResponse(reads.hashes(name, status, offset, limit))

    @app.post("/v1/datanets/{name}/known")
    def known(name: str, body: KnownBody) -> JSONResponse:
        """Which of `hashes` the Datanet holds (pending transactions included), with their status."""
        return JSONResponse(reads.known(name, body.hashes))

    @app.get("/v1/reputation/{address}")
    def show_reputation(address: str) -> JSONResponse:
        return JSONResponse(reads.reputation(address))
