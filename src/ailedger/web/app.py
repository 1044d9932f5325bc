"""The explorer's routes, added to a node's FastAPI app (`ailedger explorer`, or `node run`'s app).

Why inside the node's app rather than beside it: the in-browser proof check asks the same
`/v1/accounts/ADDR?proof=true` and `/v1/blocks/H` routes any light client asks, from the same
origin, so the page proves what the API answers and needs no cross-origin setup.

Every page handler turns a LedgerError into an HTML page with the error's HTTP status and its
sentence (a 404 for unknown ids, a 400 for malformed input), never a 500 or a JSON body. Templates
autoescape everything: record text, names and prompts are whatever someone submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request

from ailedger.core import errors
from ailedger.core.amounts import format_units
from ailedger.core.errors import LedgerError
from ailedger.core.hexid import parse_hex32
from ailedger.models import views as model_views
from ailedger.web import chain_pages, data_pages, gov_pages, market_pages, playground, search
from ailedger.web.chain_pages import Explorer
from ailedger.web.data_pages import Verifier
from ailedger.web.history import History
from ailedger.web.source import NodeReads, RemoteNode

STATIC = Path(__file__).parent / "static"
VENDOR_FILES = ("uPlot.iife.min.js", "uPlot.min.css")


def _short(value: object, n: int = 12) -> str:
    text = str(value)
    return text if len(text) <= n + 1 else text[:n] + "…"


def environment() -> Environment:
    env = Environment(loader=PackageLoader("ailedger.web", "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["units"] = lambda v: format_units(int(v))
    env.filters["short"] = _short
    env.filters["q"] = lambda v: quote(str(v), safe="")
    env.filters["when"] = chain_pages.when
    env.filters["pct"] = lambda bp: f"{int(bp) / 100:.2f}%"
    env.globals["vendored"] = all((STATIC / "vendor" / f).is_file() for f in VENDOR_FILES)
    return env


def add_explorer(app: FastAPI, node: NodeReads, verifier: Verifier | None = None,
                 history: History | None = None) -> Explorer:
    """Add the explorer's pages under `/` of `app` (whose `/v1` routes serve the same node)."""
    ex = Explorer(node, history or History(node.store, node.runtime))
    ex.history.catch_up()
    check = verifier or Verifier()
    env = environment()
    app.mount("/static", StaticFiles(directory=STATIC), name="explorer-static")

    def render(name: str, http_status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("chain_id", node.chain_id)
        ctx.setdefault("history_stopped", ex.history.stopped)
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=http_status)

    def page(name: str, build: Callable[[], dict[str, Any]], title: str) -> HTMLResponse:
        try:
            return render(name, title=title, **build())
        except LedgerError as exc:
            return error_page(exc)

    def error_page(exc: LedgerError) -> HTMLResponse:
        status = exc.code.http_status if 400 <= exc.code.http_status < 600 else 400
        return render("error.html", http_status=status, title="Not found" if status == 404 else "Bad request",
                      code=exc.code.name, message=exc.code.message, detail=exc.detail)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> HTMLResponse:
        return page("home.html", lambda: chain_pages.home(ex), "ailedger explorer")

    @app.get("/search", include_in_schema=False)
    def find(q: str = "") -> Response:
        try:
            with node.lock:
                target = search.find(q, node.state, node.store, ex.history, node.runtime.params.specs)
        except LedgerError as exc:
            return render("error.html", http_status=exc.code.http_status if exc.code.http_status == 404 else 400,
                          title="Nothing found", code=exc.code.name, message=exc.code.message, detail=exc.detail,
                          query=q)
        return RedirectResponse(target, status_code=303)

    @app.get("/blocks", response_class=HTMLResponse, include_in_schema=False)
    def blocks(before: str | None = None) -> HTMLResponse:
        return page("blocks.html", lambda: chain_pages.blocks(ex, before), "Blocks")

    @app.get("/blocks/{height}", response_class=HTMLResponse, include_in_schema=False)
    def block(height: str, after: str | None = None) -> HTMLResponse:
        if not height.isdigit() or len(height) > 18:
            return error_page(LedgerError(errors.BAD_REQUEST, f"a block height is a whole number, not {height[:40]!r}"))
        return page("block.html", lambda: chain_pages.block(ex, int(height), after), f"Block {height}")

    @app.get("/txs/{tx_id}", response_class=HTMLResponse, include_in_schema=False)
    def tx(tx_id: str) -> HTMLResponse:
        return page("tx.html", lambda: {"t": chain_pages.tx(ex, _hex32(tx_id, "transaction id"))},
                    f"Transaction {_short(tx_id)}")

    @app.get("/accounts/{address}", response_class=HTMLResponse, include_in_schema=False)
    def account(address: str, before: str | None = None) -> HTMLResponse:
        return page("account.html", lambda: chain_pages.account(ex, address, before), f"Account {_short(address)}")

    @app.get("/datanets/{name}", response_class=HTMLResponse, include_in_schema=False)
    def datanet(name: str, after: str | None = None, contributors_after: str | None = None) -> HTMLResponse:
        return page("datanet.html", lambda: data_pages.datanet(ex, name, after, contributors_after),
                    f"Datanet {name}")

    @app.get("/datanets/{name}/records/{record_hash}", response_class=HTMLResponse, include_in_schema=False)
    def record(name: str, record_hash: str) -> HTMLResponse:
        return page("record.html", lambda: data_pages.record(ex, name, record_hash), f"Record {_short(record_hash)}")

    @app.get("/models/{ref}", response_class=HTMLResponse, include_in_schema=False)
    def model(ref: str) -> HTMLResponse:
        return page("model.html", lambda: data_pages.model(ex, ref), f"Model {ref}")

    @app.get("/answers/{receipt_id}", response_class=HTMLResponse, include_in_schema=False)
    def answer(receipt_id: str) -> HTMLResponse:
        return page("answer.html", lambda: data_pages.answer(ex, _hex32(receipt_id, "receipt id"), check),
                    f"Answer {_short(receipt_id)}")

    @app.post("/explorer/answers/{receipt_id}/verify", include_in_schema=False)
    def verify(receipt_id: str) -> JSONResponse:
        """Re-verify an answer's attribution (the answer page's button); errors answer the API's shape."""
        return JSONResponse(data_pages.verify_answer(ex, _hex32(receipt_id, "receipt id"), check))

    @app.get("/governance", response_class=HTMLResponse, include_in_schema=False)
    def governance(before: str | None = None) -> HTMLResponse:
        return page("governance.html", lambda: gov_pages.proposals(ex, before), "Governance")

    @app.get("/governance/proposals/{pid}", response_class=HTMLResponse, include_in_schema=False)
    def proposal(pid: str) -> HTMLResponse:
        if not pid.isdigit() or len(pid) > 18:
            return error_page(LedgerError(errors.BAD_REQUEST, f"a proposal id is a whole number, not {pid[:40]!r}"))
        return page("proposal.html", lambda: gov_pages.proposal(ex, int(pid)), f"Proposal {pid}")

    @app.get("/params", response_class=HTMLResponse, include_in_schema=False)
    def param_list() -> HTMLResponse:
        return page("params.html", lambda: gov_pages.param_list(ex), "Parameters")

    @app.get("/params/{name}", response_class=HTMLResponse, include_in_schema=False)
    def param(name: str, after: str | None = None) -> HTMLResponse:
        return page("param.html", lambda: gov_pages.param(ex, name, after), f"Parameter {name}")

    @app.get("/market", response_class=HTMLResponse, include_in_schema=False)
    def market(leases_before: str | None = None, providers_after: str | None = None) -> HTMLResponse:
        return page("market.html", lambda: market_pages.market(ex, leases_before, providers_after), "Compute market")

    @app.get("/agents", response_class=HTMLResponse, include_in_schema=False)
    def agents(agents_after: str | None = None, tasks_before: str | None = None) -> HTMLResponse:
        return page("agents.html", lambda: market_pages.agents(ex, agents_after, tasks_before), "Agents")

    @app.get("/playground", response_class=HTMLResponse, include_in_schema=False)
    def playground_page(server: str = "", model: str = "") -> HTMLResponse:
        with node.lock:
            models = model_views.list_models(node.state)
        return render("playground.html", title="Playground", models=models, server=server, chosen=model)

    @app.post("/explorer/playground", include_in_schema=False)
    def ask(body: playground.Ask) -> StreamingResponse:
        """Relay one streamed chat completion from a serving server (so the page needs no CORS there)."""
        stream: Iterator[bytes] = playground.relay(body)
        return StreamingResponse(stream, media_type="text/event-stream")

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/v1/", "/explorer/")):
            return JSONResponse({"error": LedgerError(errors.NOT_FOUND, f"no route {request.url.path}").to_json()},
                                status_code=404)
        return error_page(LedgerError(errors.NOT_FOUND, f"no page at {request.url.path}"))

    return ex


def remote_app(remote: RemoteNode, verifier: Verifier | None = None) -> FastAPI:
    """The explorer over a node elsewhere (`ailedger explorer --node URL`).

    Beside the pages it answers the two light-client questions the proof check asks
    (`/v1/accounts/ADDR?proof=true`, `/v1/blocks/H`) by passing them on to the node unchanged: the
    browser checks the node's own answer, from this page's origin.
    """
    app = FastAPI(title="ailedger explorer", redoc_url=None, docs_url=None, openapi_url=None)

    @app.exception_handler(LedgerError)
    async def on_ledger_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LedgerError)
        return JSONResponse({"error": exc.to_json()}, status_code=exc.code.http_status)

    @app.get("/v1/accounts/{address}")
    def account(address: str, proof: bool = False) -> JSONResponse:
        return JSONResponse(remote.account(address, proof))

    @app.get("/v1/blocks/{height}")
    def block(height: int) -> JSONResponse:
        return JSONResponse(remote.block_json(height))

    add_explorer(app, remote, verifier, remote.history)
    return app


def _hex32(text: str, what: str) -> str:
    """A transaction or receipt id as 64 lowercase hex digits, else bad_hex (a 400 page)."""
    try:
        return parse_hex32(text, errors.BAD_HEX).hex()
    except LedgerError as exc:
        raise LedgerError(errors.BAD_HEX, f"{what}: {exc.detail}") from None
