"""Model registry and compute job routes: the JSON of `models.service` and `market.service` over HTTP.

The ledger's view of models lives under `/v1/ledger/…`: `/v1/models` is kept for the
OpenAI-compatible serving API, which lists what it can answer with, not what the ledger records.
A model reference in the path (`name`, `name@3`, `name@sha256:HEX`) is one URL-encoded segment.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ailedger.chain.node import Node
from ailedger.market.service import JobReads
from ailedger.models.service import ModelReads


def add_model_routes(app: FastAPI, node: Node) -> None:
    models, jobs = ModelReads(node), JobReads(node)

    @app.get("/v1/ledger/models")
    def list_models(include_retired: bool = True) -> JSONResponse:
        """Every published adapter version with its provenance."""
        return JSONResponse(models.models(include_retired))

    @app.get("/v1/ledger/models/{ref}")
    def show_model(ref: str) -> JSONResponse:
        return JSONResponse(models.model(ref))

    @app.get("/v1/ledger/bases")
    def list_bases() -> JSONResponse:
        return JSONResponse(models.bases())

    @app.get("/v1/ledger/bases/{name}")
    def show_base(name: str) -> JSONResponse:
        return JSONResponse(models.base(name))

    @app.get("/v1/jobs")
    def list_jobs(status: str | None = None) -> JSONResponse:
        return JSONResponse(jobs.jobs(status))

    @app.get("/v1/jobs/{job_id}")
    def show_job(job_id: str) -> JSONResponse:
        return JSONResponse(jobs.job(job_id))
