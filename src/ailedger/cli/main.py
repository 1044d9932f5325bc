"""The `ailedger` command: the root Typer app, its global options, and the one error handler.

Every LedgerError raised anywhere below is caught once, here, and printed as
`error[<code>]: <sentence> (<detail>)` on stderr (plus `{"error": ...}` on stdout under --json),
with exit status 1 (2 for a malformed argument); a LedgerError never reaches the user as a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ailedger.cli import (
    agent,
    anchor,
    attribution,
    bench,
    billing,
    chain,
    datanet,
    demo,
    earnings,
    explorer,
    gov,
    job,
    keys,
    market,
    model,
    provider,
    query,
    reputation,
    serve,
    sim,
    store,
    task,
    tx,
)
from ailedger.cli.output import HOME_ENV, Settings, default_home, exit_code, report_error
from ailedger.core.errors import LedgerError


class LedgerGroup(TyperGroup):
    """The root group: turns a LedgerError from any subcommand into the standard error report."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            s = ctx.find_object(Settings)
            report_error(exc, as_json=bool(s and s.json))
            raise typer.Exit(exit_code(exc)) from None


app = typer.Typer(cls=LedgerGroup, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ailedger: an open ledger for the inputs of AI. Keys, chains, nodes and transactions.")


@app.callback()
def root(ctx: typer.Context,
         home: Annotated[Path | None, typer.Option(
             "--home", help=f"Home directory: keys in HOME/keys, default data dir HOME/data (env {HOME_ENV}, "
             "default ~/.ailedger).", file_okay=False)] = None,
         json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
         = False) -> None:
    ctx.obj = Settings(home if home is not None else default_home(), json_out)


app.add_typer(keys.app, name="keys")
app.add_typer(chain.chain_app, name="chain")
app.add_typer(chain.node_app, name="node")
app.add_typer(tx.app, name="tx")
app.add_typer(datanet.app, name="datanet")
app.add_typer(reputation.app, name="reputation")
app.add_typer(model.app, name="model")
app.add_typer(job.app, name="job")
app.add_typer(billing.app, name="billing")
app.add_typer(attribution.app, name="attribution")
app.add_typer(gov.app, name="gov")
app.add_typer(market.app, name="market")
app.add_typer(provider.app, name="provider")
app.add_typer(agent.app, name="agent")
app.add_typer(task.app, name="task")
app.add_typer(sim.app, name="sim")
app.add_typer(query.account_app, name="account")
app.add_typer(query.block_app, name="block")
app.add_typer(query.proof_app, name="proof")
app.add_typer(anchor.app, name="anchor")
app.add_typer(store.app, name="store")
app.command("params")(query.params_cmd)
app.command("status")(query.status_cmd)
app.command("bench")(bench.bench)
app.command("demo")(demo.demo)
app.command("explorer")(explorer.explorer)
app.command("serve")(serve.serve)
app.command("earnings")(earnings.earnings)
app.command("withdraw")(earnings.withdraw)


def main() -> None:
    app(prog_name="ailedger")


if __name__ == "__main__":
    main()
