"""Compute-market routes: the JSON of `market.service.market_json` over HTTP, read only.

GET /v1/market/providers[?address=A]          providers with their bond, offer and reputation
GET /v1/market/orders[?status=S|id=N|from=N]  orders (one order with its window's bids for id=N)
GET /v1/market/leases[?status=S|party=A|id=N] leases with what each owes its provider now
GET /v1/market/checks[?status=S|verifier=A]   spot checks
GET /v1/market/stats[?window=N]               top operator share and HHI per resource class, now and per block
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ailedger.chain.node import Node
from ailedger.market.service import MarketReads


def add_market_routes(app: FastAPI, node: Node) -> None:
    reads = MarketReads(node)

    @app.get("/v1/market/{view}")
    def market_view(view: str, request: Request) -> JSONResponse:
        """One of the market's read views (module docstring); unknown views and bad queries are coded errors."""
        return JSONResponse(reads.market(view, dict(request.query_params)))
