"""Agents routes: the JSON of `agents.service` over HTTP (agents, tasks, the registered tools and checkers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from ailedger.agents.service import AgentReads
from ailedger.chain.node import Node
from ailedger.core.encoding import MAX_AMOUNT


def add_agents_routes(app: FastAPI, node: Node) -> None:
    reads = AgentReads(node)

    @app.get("/v1/agents")
    def agents(task_type: str | None = None, status: str | None = None) -> JSONResponse:
        """Agents in registration order, or in routing order (score, price) for one task type."""
        return JSONResponse(reads.agents(task_type, status))

    @app.get("/v1/agents/registry")
    def agents_registry(address: str | None = None) -> JSONResponse:
        """The registered tools and checkers (and whether `address` is a verifier)."""
        return JSONResponse(reads.registry(address))

    @app.get("/v1/agents/{name}")
    def agent(name: str) -> JSONResponse:
        """One agent: model, policy hash, tools, price, status, verified score, pay and verification rates."""
        return JSONResponse(reads.agent(name))

    @app.get("/v1/tasks")
    def tasks(status: str | None = None, agent: str | None = None, offset: int = 0, limit: int = 100) -> JSONResponse:
        """Tasks newest first, optionally of one status or agent."""
        return JSONResponse(reads.tasks(status, agent, offset, limit))

    @app.get("/v1/tasks/{tid}")
    def task(tid: Annotated[int, PathParam(ge=0, le=MAX_AMOUNT)]) -> JSONResponse:
        """One task: its escrow, deadlines, result, sampling draw, verdict and what it paid."""
        return JSONResponse(reads.task(tid))
