"""Settlement routes: the JSON of `settlement.service` over HTTP (earnings, lines with their receipts, totals)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ailedger.chain.node import Node
from ailedger.settlement.service import SettlementReads


def add_settlement_routes(app: FastAPI, node: Node) -> None:
    reads = SettlementReads(node)

    @app.get("/v1/settlement/earnings/{address}")
    def settlement_earnings(address: str, datanet: str | None = None, model: str | None = None,
                            from_height: int | None = None, to_height: int | None = None,
                            limit: int = 100) -> JSONResponse:
        """An address's earnings balance, vesting and per-block lines (filter by Datanet, model, heights)."""
        return JSONResponse(reads.earnings(address, datanet, model, from_height, to_height, limit))

    @app.get("/v1/settlement/earnings/{address}/lines/{height}")
    def settlement_line(address: str, height: int, limit: int = 100) -> JSONResponse:
        """One earnings line with the receipts behind it, recomputed by the settlement rule."""
        return JSONResponse(reads.line(address, height, limit))

    @app.get("/v1/settlement/totals")
    def settlement_totals() -> JSONResponse:
        """Lifetime totals and the supply-conservation check."""
        return JSONResponse(reads.totals())
