"""Governance routes: the JSON of `governance.service` over HTTP (proposals, one proposal, the treasury)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from ailedger.chain.node import Node
from ailedger.core.encoding import MAX_AMOUNT
from ailedger.governance.service import GovReads


def add_governance_routes(app: FastAPI, node: Node) -> None:
    reads = GovReads(node)

    @app.get("/v1/gov/proposals")
    def gov_proposals(status: str | None = None, offset: int = 0, limit: int = 100) -> JSONResponse:
        """Proposals newest first (optionally of one status), with their tallies and the treasury."""
        return JSONResponse(reads.proposals(status, offset, limit))

    @app.get("/v1/gov/proposals/{pid}")
    def gov_proposal(pid: Annotated[int, PathParam(ge=0, le=MAX_AMOUNT)], voter: str | None = None) -> JSONResponse:
        """One proposal: text, changes or spend, tally, deposits and their fate (and one voter's vote)."""
        return JSONResponse(reads.proposal(pid, voter))

    @app.get("/v1/gov/treasury")
    def gov_treasury() -> JSONResponse:
        """What the treasury holds, and the deposits held on open proposals."""
        return JSONResponse(reads.treasury())
