"""Billing routes: the JSON of `billing.service` over HTTP (prepaid accounts, API keys, receipts, escrow).

A key is looked up by its hash only: the API key itself never travels to the node.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ailedger.billing.service import BillingReads
from ailedger.chain.node import Node


def add_billing_routes(app: FastAPI, node: Node) -> None:
    reads = BillingReads(node)

    @app.get("/v1/billing/accounts/{address}")
    def billing_account(address: str) -> JSONResponse:
        """An account's prepaid balance, withdrawing bucket and API keys."""
        return JSONResponse(reads.account(address))

    @app.get("/v1/billing/keys/{key_hash}")
    def billing_key(key_hash: str) -> JSONResponse:
        """One API key with its remaining allowance and its account's funds."""
        return JSONResponse(reads.key(key_hash))

    @app.get("/v1/billing/receipts/{receipt_id}")
    def billing_receipt(receipt_id: str) -> JSONResponse:
        return JSONResponse(reads.receipt(receipt_id))

    @app.get("/v1/billing/receipts")
    def billing_receipts(key: str | None = None, offset: int = 0, limit: int = 100) -> JSONResponse:
        """Receipts oldest first: of one key (`key` = its hash), else every receipt in ledger order."""
        return JSONResponse(reads.receipts(key, offset, limit))

    @app.get("/v1/billing/escrow")
    def billing_escrow() -> JSONResponse:
        return JSONResponse(reads.escrow())
