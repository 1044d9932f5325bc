"""`ailedger demo`: payable inference end to end, on a real node, with SmolLM2-135M-Instruct.

The steps (DESIGN.md's core loop), each printed with the command a person would type to do it by hand:

1. keys for the cast of `demo_world` and a genesis; a node process on loopback (`node run`);
2. a Datanet of fictional facts: the honest contributors' records pass the gates and the
   validators' votes; then the spammer's and the junk poster's records are rejected, by the gates
   (near-copies, stuffing, PII, noise) or by the validators (false facts), and their stake is lost;
   the curator freezes version 1;
3. a LoRA fine-tune of the base on that snapshot, run as a compute job the builder pays the
   provider for (`model train`); the adapter is published with its provenance and price; its
   attribution bundle is built and its root published (`attribution index --publish`);
4. the consumer deposits, authorizes an API key and asks questions through the OpenAI-compatible
   API (`serve`); each answer comes with its attribution record, printed as its top contributor and
   shares; receipts go to the ledger signed by the provider;
5. settlement splits each receipt's fee in the block that records it; the final table says who
   earned what and why; the node stops and `chain verify` replays every block.

Re-running: the working directory keeps `state.json`, the stages finished so far. `--continue`
restarts the node on the same chain and goes on from the first unfinished stage (every stage is
idempotent against the ledger: contributions already in the Datanet are skipped, gates skip what
they checked, a training job resumes from its checkpoint, a bundle from its finished parts);
`--fresh` wipes the directory first. Ctrl-C at any point loses nothing that reached the ledger or
the disk.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from ailedger.api.client import HttpClient
from ailedger.billing import payloads as bp
from ailedger.billing.keys import api_key_hash, new_api_key
from ailedger.chain.accounts import TRANSFER, TRANSFER_CODEC, Transfer
from ailedger.cli import demo_world as w
from ailedger.cli.chain import init_chain, render_report, report_failure, verify_data_dir
from ailedger.cli.demo import MARKER, PASSPHRASE, running_node
from ailedger.cli.keys import KeyDir
from ailedger.cli.output import Settings, ok_mark, units
from ailedger.cli.progress import stage_bars
from ailedger.cli.tx import send_ok
from ailedger.core import errors
from ailedger.core.address import decode_address
from ailedger.core.amounts import MICRO
from ailedger.core.errors import LedgerError
from ailedger.core.keys import KeyPair
from ailedger.datanet import payloads as dp
from ailedger.datanet.remote import pages
from ailedger.datanet.state import FeeSplit

if TYPE_CHECKING:
    from ailedger.factory.basemodel import BaseModel

CHAIN_ID = "ailedger-demo"
DATANET = "atlas"
ADAPTER = "atlas-lora"
STATE = "state.json"
STAKE_PER_RECORD = MICRO // 2
PRICE_PER_1K = 2 * MICRO  # the adapter's price per 1,000 tokens
BUDGET = 2 * MICRO  # the training job's budget, paid to the provider
DEPOSIT = 20 * MICRO  # the consumer's prepaid balance
GENESIS = {  # person -> (balance, bonded stake), in units
    w.CURATOR: (100, 0), **{v: (10, 5) for v in w.VALIDATORS}, **{c: (100, 0) for c in w.CONTRIBUTORS},
    w.BUILDER: (100, 0), w.PROVIDER: (10, 5), w.CONSUMER: (100, 0)}
PARAMS = {"datanet_min_window_blocks": 2, "settlement_vesting_blocks": 20}


@dataclass(frozen=True)
class DemoConfig:
    """What the demo trains and asks; the defaults are the demo, smaller values are for tests."""

    base: str = "smollm2"
    facts_per_owner: int = 4
    paraphrases: int = 3
    questions_per_owner: int = 2
    epochs: int = 8
    lr: float = 5e-3
    batch_size: int = 2
    rank: int = 8
    k: int = 2048
    max_tokens: int = 40
    seed: int = 0
    window: int = 12
    block_interval: float = 0.2


@dataclass
class Run:
    s: Settings
    c: Console
    root: Path
    cfg: DemoConfig
    keys: dict[str, KeyPair]
    state: dict[str, Any]
    cast: w.Cast
    backend: HttpClient | None = None
    url: str = ""

    @property
    def node(self) -> HttpClient:
        assert self.backend is not None
        return self.backend

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def adapter_dir(self) -> Path:
        return self.root / "adapters" / ADAPTER

    def cli(self, command: str) -> None:
        """Print the command a person would type for the step being done."""
        self.c.print(f"[dim]$ ailedger --home {self.home} {command}[/dim]", soft_wrap=True)

    def done(self, stage: str, result: Any = True) -> None:
        self.state.setdefault("stages", {})[stage] = result
        tmp = self.root / (STATE + ".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        tmp.replace(self.root / STATE)

    def finished(self, stage: str) -> Any:
        return self.state.get("stages", {}).get(stage)

    def send(self, person: str, tx_type: int, payload: bytes) -> dict[str, Any]:
        return send_ok(self.node, self.keys[person], tx_type, payload, None)

    def person_of(self, address: str) -> str:
        return next((p for p, k in self.keys.items() if k.address_text == address), address[:12] + "…")


# -- the working directory --------------------------------------------------------------------------------

def prepare(directory: Path, fresh: bool, resume: bool, interactive: bool, c: Console) -> tuple[Path, bool]:
    """(the directory, whether an earlier run goes on): wipe or keep per the flags, asking when neither is given."""
    from ailedger.cli.demo import fresh_dir

    made = (directory / MARKER).exists() and (directory / STATE).exists()
    if fresh and resume:
        raise LedgerError(errors.BAD_ARGUMENT, "--fresh and --continue exclude each other; give one")
    if made and not fresh:
        if resume:
            return directory.resolve(), True
        if interactive:
            import typer

            if typer.confirm(f"{directory} holds an earlier demo run. Continue it (no: start fresh)?", default=True):
                return directory.resolve(), True
        else:
            c.print(f"[yellow]{directory} held an earlier demo run; starting fresh (pass --continue to go on with "
                    "it instead).[/yellow]")
    elif resume:
        c.print(f"[yellow]nothing to continue in {directory}; starting fresh.[/yellow]")
    return fresh_dir(directory), False


def preflight(cfg: DemoConfig) -> None:
    """Refuse early, with a sentence, what would fail minutes later: a missing base model or package."""
    import importlib.util

    for module, package in (("torch", "torch"), ("transformers", "transformers"), ("peft", "peft")):
        if importlib.util.find_spec(module) is None:
            raise LedgerError(errors.MODEL_MISSING, f"the demo needs the package {package}; it is not installed")
    from ailedger.factory.basemodel import SMOLLM2, smollm2_gguf

    if cfg.base.lower() == SMOLLM2:
        smollm2_gguf()
    elif not (Path(cfg.base) / "config.json").is_file():
        raise LedgerError(errors.BASE_MODEL_UNAVAILABLE, f"--base {cfg.base}: no config.json there")


# -- stages ---------------------------------------------------------------------------------------------------

def make_keys(run: Run, resumed: bool) -> None:
    keydir = KeyDir(run.home / "keys")
    with run.c.status("keys: Argon2id keystores for the cast…"):
        for person in w.PEOPLE:
            if resumed and keydir.file(person).exists():
                run.keys[person] = keydir.unlock(person, PASSPHRASE)
            else:
                run.keys[person] = keydir.create(person, PASSPHRASE)[0]
    for person in w.PEOPLE:
        run.c.print(f"{ok_mark(True)} {person:<9} {run.keys[person].address_text}  [dim]{w.ROLE[person]}[/dim]")


def genesis(run: Run) -> None:
    if run.finished("genesis"):
        return
    allocations = [{"address": run.keys[p].address_text, "balance": bal * MICRO, "stake": stake * MICRO}
                   for p, (bal, stake) in GENESIS.items()]
    run.cli(f"chain init --chain-id {CHAIN_ID} --alloc curator=100 … --param datanet_min_window_blocks=2")
    init_chain(run.data, CHAIN_ID, allocations, PARAMS)
    run.done("genesis")


def tick(run: Run) -> None:
    """One small transaction, so that the node seals one more block (it seals none while idle)."""
    payload = TRANSFER_CODEC.encode(Transfer(run.keys[w.BUILDER].address, 1))
    run.send(w.CURATOR, TRANSFER, payload)


def _write_file(run: Run, contribution: w.Contribution) -> Path:
    path = run.root / "contributions" / f"{contribution.person}-{contribution.kind.replace(' ', '-')}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in contribution.records))
    return path


def _contribute(run: Run, contribution: w.Contribution, honest: bool, tick_cb: Callable[[str, int, int | None], None]
                ) -> None:
    from ailedger.datanet.pipeline import contribute

    path = _write_file(run, contribution)
    flag = "" if honest else " --include-rejected"
    run.cli(f"datanet contribute {DATANET} {path.relative_to(run.root)} --from {contribution.person}{flag}")
    summary = contribute(path, DATANET, run.keys[contribution.person], run.node, include_rejected=not honest,
                         progress=lambda stage, done, total: tick_cb(f"{contribution.person} {stage}", done, total))
    run.c.print(f"{ok_mark(True)} {contribution.person}: {summary.staked} {contribution.kind} records staked "
                f"({units(summary.staked * summary.stake_per_record)} units)"
                + (f", {summary.already_in_datanet} already in" if summary.already_in_datanet else "")
                + (f"; its own check flagged {summary.rejected}" if summary.rejected else ""))


def _gate(run: Run, tick_cb: Callable[[str, int, int | None], None]) -> None:
    from ailedger.datanet.gatekeeper import run_gates

    run.cli(f"datanet gate {DATANET} --from {w.CURATOR}")
    g = run_gates(DATANET, run.keys[w.CURATOR], run.node, run.root / "gatekeeper",
                  progress=lambda stage, done, total: tick_cb(f"gate {stage}", done, total))
    reasons = ", ".join(f"{n} {k}" for k, n in sorted(g.by_reason.items())) if g.rejected else "none"
    run.c.print(f"{ok_mark(True)} gates: {g.checked} checked, {g.passed} passed, {g.rejected} rejected ({reasons})")


def _vote(run: Run) -> None:
    """Each validator votes on the pending records it has not voted on, by demo_world's rule."""
    accepted = [json.loads(run.node.get_blob(h)) for h in _hashes(run, "accepted")]
    judge = w.Validator(accepted)
    pending = [r for page in pages(lambda offset: run.node.datanet_pending(DATANET, 1_000, offset))
               for r in page["records"]]
    verdicts: dict[str, tuple[bool, str]] = {}  # the rule is shared: a record is read and judged once

    def verdict(h: str) -> tuple[bool, str]:
        if h not in verdicts:
            verdicts[h] = judge.judge(json.loads(run.node.get_blob(h)))
        return verdicts[h]

    for validator in w.VALIDATORS:
        me = run.keys[validator].address_text
        ballots, rejected = [], []
        for rec in pending:
            if any(v["voter"] == me for v in rec["votes"]):
                continue
            accept, why = verdict(rec["hash"])
            ballots.append(dp.Ballot(bytes.fromhex(rec["hash"]), int(accept)))
            if not accept:
                rejected.append(why)
        if not ballots:
            continue
        run.cli(f"datanet vote {DATANET} --from {validator} --file votes.jsonl")
        run.send(validator, dp.VOTE, dp.VOTE_CODEC.encode(dp.VoteBatch(DATANET, ballots)))
        shown = f": {rejected[0]}" if rejected else ""
        run.c.print(f"{ok_mark(True)} {validator}: {len(ballots) - len(rejected)} accept, {len(rejected)} reject"
                    f"{shown}")


def _hashes(run: Run, status: str) -> list[str]:
    return [h for page in pages(lambda offset: run.node.datanet_hashes(DATANET, status, offset, 1_000))
            for h in page["hashes"]]


def _close_windows(run: Run, bars: Callable[[str, int, int | None], None]) -> None:
    """Seal blocks until no record of the Datanet is pending (each window ends and is decided)."""
    first = run.node.status()["height"]
    while pending := run.node.datanet_pending(DATANET, 1_000)["records"]:
        end = max(int(r["window_end"]) for r in pending)
        bars("windows", run.node.status()["height"] - first, end - first + 1)
        tick(run)


def datanet(run: Run) -> None:
    c = run.c
    if run.finished("datanet"):
        return
    known = {d["name"] for d in run.node.datanets()["datanets"]}
    if DATANET not in known:
        run.cli(f"datanet create {DATANET} --from {w.CURATOR} --topic 'fictional towns' --stake-per-record 0.5 "
                f"--quorum 2 --window {run.cfg.window}")
        payload = dp.CREATE_CODEC.encode(dp.CreateDatanet(
            DATANET, "fictional towns: their keepers, seals, rivers, dogs and markets",
            "the facts of the ailedger demo", bytes(32), "CC-BY-4.0", STAKE_PER_RECORD, 2, run.cfg.window,
            FeeSplit(7_000, 1_500, 1_000, 500), 8_000, 0))
        run.send(w.CURATOR, dp.CREATE, payload)
    validators = set(run.node.datanet(DATANET)["validators"])
    for v in w.VALIDATORS:
        if run.keys[v].address_text not in validators:
            run.cli(f"datanet register-validator {DATANET} --from {v}")
            run.send(v, dp.REGISTER_VALIDATOR, dp.NAMED_CODEC.encode(dp.Named(DATANET)))
    c.print(f"{ok_mark(True)} Datanet {DATANET}: stake 0.5 per record, quorum 2 validators, window "
            f"{run.cfg.window} blocks, fee split 70% data / 15% model owner / 10% compute / 5% validators")
    with stage_bars(run.s, transient=True) as bars:
        for round_name, contributions, honest in (("honest", run.cast.honest, True), ("bad", run.cast.bad, False)):
            c.print(f"[bold]{'honest contributors' if honest else 'the spammer and the junk poster'}[/bold]")
            for contribution in contributions:
                _contribute(run, contribution, honest, bars)
            _gate(run, bars)
            _vote(run)
            _close_windows(run, bars)
            c.print(f"{ok_mark(True)} round {round_name} decided at height {run.node.status()['height']}")
    version = run.node.datanet(DATANET)["versions"]
    if not version:
        run.cli(f"datanet snapshot {DATANET} --from {w.CURATOR}")
        run.send(w.CURATOR, dp.SNAPSHOT, dp.NAMED_CODEC.encode(dp.Named(DATANET)))
        version = run.node.datanet(DATANET)["versions"]
    v1 = version[0]
    c.print(f"{ok_mark(True)} version 1 frozen: {v1['count']} accepted records, root {v1['root'][:16]}…")
    run.done("datanet", {"records": v1["count"], "root": v1["root"]})


def train(run: Run, base: BaseModel) -> None:
    from ailedger.cli.model import publish_adapter, register_base_payload
    from ailedger.cli.model_train import train_bars
    from ailedger.factory.job import run_training_job
    from ailedger.factory.train import TrainSpec
    from ailedger.models import payloads as mp

    if run.finished("train"):
        return
    cfg = run.cfg
    if base.info.name not in {b["name"] for b in run.node.ledger_bases()["bases"]}:
        run.cli(f"model register-base {base.info.name} --from {w.BUILDER} --dir {base.info.path}")
        run.send(w.BUILDER, mp.REGISTER_BASE, register_base_payload(base.info.name, base.info.to_json(),
                                                                    "Apache-2.0"))
    records = int(run.finished("datanet")["records"])
    steps = cfg.epochs * math.ceil(records / cfg.batch_size)
    spec = TrainSpec(base=cfg.base, datanet=DATANET, version=1, snapshot_root="", rank=cfg.rank, alpha=2 * cfg.rank,
                     dropout=0.0, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, max_len=128,
                     seed=cfg.seed, checkpoint_every=max(1, math.ceil(steps / 2)))
    run.cli(f"model train --from {w.BUILDER} --worker {w.PROVIDER} --datanet {DATANET} --version 1 --out "
            f"{run.adapter_dir.relative_to(run.root)} --budget 2 --epochs {cfg.epochs} --lr {cfg.lr} --batch-size "
            f"{cfg.batch_size} --rank {cfg.rank} --dropout 0")
    with train_bars(run.s) as (on_step, on_stage):
        job = run_training_job(run.node, run.keys[w.BUILDER], run.keys[w.PROVIDER], spec, run.adapter_dir, BUDGET,
                               1_000, on_step=on_step, on_stage=on_stage, base=base,
                               on_event=lambda line: run.c.print(f"  [dim]{escape(line)}[/dim]"))
    run.c.print(f"{ok_mark(True)} adapter {job.adapter_hash[:16]}…: {job.steps} steps, final loss "
                f"{job.final_loss:.3f}; job {job.job_id[:16]}… paid {units(job.budget_paid)} to {w.PROVIDER}")
    run.cli(f"model publish {ADAPTER} --from {w.BUILDER} --base {base.info.name} --adapter-dir "
            f"{run.adapter_dir.relative_to(run.root)} --datanet {DATANET} --version 1 --price 2 --job {job.job_id}")
    published = publish_adapter(run.node, run.keys[w.BUILDER], ADAPTER, base.info.name, run.adapter_dir, DATANET, 1,
                                 PRICE_PER_1K, job.job_id)
    run.c.print(f"{ok_mark(True)} published {ADAPTER}@{published['version']} at 2 units per 1,000 tokens")
    run.done("train", {"adapter_hash": job.adapter_hash, "version": published["version"], "job": job.job_id,
                       "steps": job.steps, "final_loss": job.final_loss})


def index(run: Run, base: BaseModel) -> None:
    from ailedger.attribution.attributor import build_bundle
    from ailedger.attribution.influence import InfluenceConfig
    from ailedger.attribution.snapshot import adapter_snapshot
    from ailedger.cli.model import publish_attribution

    if run.finished("index"):
        return
    version = int(run.finished("train")["version"])
    run.cli(f"attribution index {run.adapter_dir.relative_to(run.root)} --publish --from {w.BUILDER}")
    with stage_bars(run.s, transient=True) as bars:
        snap = adapter_snapshot(run.adapter_dir, run.node, bars)
        bundle = build_bundle(run.adapter_dir, base, snap.records, snap.hashes, snap.contributors,
                              InfluenceConfig(k=run.cfg.k, seed=run.cfg.seed), bars)
    publish_attribution(run.node, run.keys[w.BUILDER], ADAPTER, version, bundle.root)
    run.c.print(f"{ok_mark(True)} attribution bundle over {len(snap.hashes)} records, root {bundle.root.hex()[:16]}… "
                f"published for {ADAPTER}@{version}")
    run.done("index", {"root": bundle.root.hex()})


def consumer_key(run: Run) -> str:
    found = run.finished("key")
    if found:
        return str(found)
    run.cli(f"billing deposit 20 --from {w.CONSUMER}")
    run.send(w.CONSUMER, bp.DEPOSIT, bp.AMOUNT_CODEC.encode(bp.Amount(DEPOSIT)))
    api_key = new_api_key()
    run.cli(f"billing key create --from {w.CONSUMER} --provider {w.PROVIDER} --allowance 20")
    provider = decode_address(run.keys[w.PROVIDER].address_text)
    run.send(w.CONSUMER, bp.AUTHORIZE_KEY, bp.AUTHORIZE_KEY_CODEC.encode(
        bp.AuthorizeKey(api_key_hash(api_key), provider, DEPOSIT, 0)))
    run.c.print(f"{ok_mark(True)} {w.CONSUMER} prepaid 20 units and authorized an API key for {w.PROVIDER}")
    run.done("key", api_key)
    return api_key


@contextmanager
def serving(run: Run, base: BaseModel) -> Iterator[str]:
    """The OpenAI-compatible server over the published adapter, billing and attributing; yields its URL."""
    import uvicorn

    from ailedger.api.server import run_server_in_thread
    from ailedger.cli.serve import attribution_worker
    from ailedger.serving.billing import LedgerBilling
    from ailedger.serving.catalog import Catalog
    from ailedger.serving.stack import build_stack, served_base

    run.cli(f"serve --node {run.url} --adapters {run.adapter_dir.parent.relative_to(run.root)} --provider "
            f"{w.PROVIDER} --port 0")
    catalog = Catalog.from_ledger(served_base(base), run.node.ledger_models(include_retired=True),
                                  run.adapter_dir.parent)
    with stage_bars(run.s, transient=True) as bars:
        worker = attribution_worker(base, catalog, True, run.root / "attribution.sqlite", bars)
    with HttpClient(run.url, timeout=30) as billing_node:
        stack = build_stack(base, catalog, max_batch=4, billing=LedgerBilling(billing_node, run.keys[w.PROVIDER]),
                            attribution=worker)
        try:
            stack.start()
            server = uvicorn.Server(uvicorn.Config(stack.app(), log_level="warning", access_log=False,
                                                   lifespan="off"))
            with run_server_in_thread(server, start_timeout_s=30) as url:
                yield url
        finally:
            stack.close()  # ends the requests, attributes what is queued, sends the receipts


def ask(run: Run, base: BaseModel) -> None:
    import httpx

    if run.finished("answers"):
        return
    api_key = consumer_key(run)
    answers = []
    with serving(run, base) as url:
        run.c.print(f"{ok_mark(True)} serving {ADAPTER} on {url}")
        for fact in run.cast.questions:
            body = {"model": ADAPTER, "messages": [{"role": "user", "content": fact.question}],
                    "max_tokens": run.cfg.max_tokens, "temperature": 0, "attribution": True}
            r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=600,
                           headers={"Authorization": f"Bearer {api_key}"})
            if r.status_code != 200:
                raise LedgerError(errors.INTERNAL, f"the server answered {r.status_code}: {r.text[:300]}")
            answers.append(_answer(run, fact, r.json()))
    run.done("answers", answers)


def _answer(run: Run, fact: Any, doc: dict[str, Any]) -> dict[str, Any]:
    from ailedger.cli.demo_render import render_answer

    led = doc["ailedger"]
    record = led.get("attribution") or {}
    shares = [{"person": run.person_of(s["contributor"]), "bp": s["bp"]} for s in record.get("shares", [])]
    text = doc["choices"][0]["message"]["content"]
    out = {"question": fact.question, "owner": fact.owner, "answer": text, "fact": fact.answer,
           "correct": fact.answer.lower() in text.lower(), "receipt_id": led["receipt_id"],
           "fee": led.get("fee"), "tokens": doc["usage"]["total_tokens"], "shares": shares,
           "spans": len(record.get("spans", []))}
    render_answer(run.c, out)
    return out


def settle(run: Run) -> dict[str, Any]:
    """Wait until every answer's receipt is on the ledger and settled; returns the table's rows."""
    answers = run.finished("answers") or []
    with run.c.status("waiting for the receipts to be settled…"):
        deadline = time.monotonic() + 60
        for a in answers:
            while True:
                try:
                    found = run.node.billing_receipt(a["receipt_id"])
                except LedgerError as exc:
                    if exc.code is not errors.RECEIPT_NOT_FOUND:
                        raise
                    found = {}
                if found.get("settled"):
                    break
                if time.monotonic() > deadline:
                    raise LedgerError(errors.TX_FAILED, f"receipt {a['receipt_id']} was not settled within a minute")
                time.sleep(0.2)
    run.cli(f"earnings {w.HONEST[0]} --node {run.url}")
    return people_table(run)


def people_table(run: Run) -> dict[str, Any]:
    """Per person: what the ledger shows now against genesis, and the Datanet's verdicts on their records."""
    verdicts: dict[str, dict[str, int]] = {}
    for h in _hashes(run, "any"):
        rec = run.node.datanet_record(DATANET, h)
        person = run.person_of(rec["contributor"])
        why = rec["status"] if rec.get("gate") is None else f"gate: {rec['gate']['reason_name']}"
        verdicts.setdefault(person, {})
        verdicts[person][why] = verdicts[person].get(why, 0) + 1
    rows = []
    for person in w.PEOPLE:
        address = run.keys[person].address_text
        acct = run.node.account(address)
        earned = run.node.settlement_earnings(address)
        balance, stake = GENESIS[person]
        vesting = sum(int(v["amount"]) for v in earned["vesting"])
        billed = run.node.billing_account(address)
        rows.append({"person": person, "role": w.ROLE[person], "address": address,
                     "balance": acct["balance"], "stake": acct["stake"], "prepaid": billed["prepaid"],
                     "spent": sum(int(k["spent"]) for k in billed["keys"]),
                     "change": acct["balance"] + acct["stake"] + billed["prepaid"] + billed["withdrawing"]
                     + earned["balance"] + vesting
                     - (balance + stake) * MICRO,
                     "earned": earned["earned"] + earned["held"], "earnings_balance": earned["balance"],
                     "vesting": vesting, "records": verdicts.get(person, {})})
    return {"people": rows, "totals": run.node.settlement_totals()}


def payable_demo(s: Settings, directory: Path, cfg: DemoConfig, fresh: bool, resume: bool,
                 interactive: bool) -> dict[str, Any]:
    """Run (or continue) the whole loop in `directory`; returns the summary (JSON-ready)."""
    from ailedger.cli.demo_render import render_people

    c = s.err if s.json else s.out
    started = time.monotonic()
    preflight(cfg)
    _quiet_libraries()
    root, resumed = prepare(directory, fresh, resume, interactive, c)
    state = json.loads((root / STATE).read_text()) if resumed else {"config": asdict(cfg), "stages": {}}
    if resumed and state.get("config") != asdict(cfg):
        raise LedgerError(errors.BAD_ARGUMENT, f"{directory} was made with other settings ({state.get('config')}); "
                                               "run with the same options, or --fresh")
    run = Run(s, c, root, cfg, {}, state, w.cast(cfg.facts_per_owner, cfg.paraphrases, cfg.questions_per_owner,
                                                 cfg.seed))
    run.done("started", state["stages"].get("started", time.time()))

    c.rule("[bold]1. keys, genesis and a node")
    make_keys(run, resumed)
    genesis(run)
    with running_node(run.home, run.data, root / "node.log", cfg.block_interval) as url, \
            HttpClient(url, timeout=30) as node:
        run.backend, run.url = node, url
        c.print(f"{ok_mark(True)} node on {url} [dim](log: {escape(str(root / 'node.log'))})[/dim]")
        c.rule("[bold]2. a Datanet: gates, votes, slashing, a snapshot")
        datanet(run)
        c.rule("[bold]3. fine-tune, publish, index for attribution")
        base = _load_base(run)
        train(run, base)
        index(run, base)
        c.rule("[bold]4. questions through the OpenAI-compatible API, each with its attribution")
        ask(run, base)
        c.rule("[bold]5. settlement: who earned what, and why")
        table = settle(run)
        render_people(c, table)
        height = node.status()["height"]
    c.rule("[bold]6. audit: replay every block")
    run.cli(f"chain verify --data-dir {run.data}")
    report = verify_data_dir(s, run.data)
    render_report(c, report)
    if not report.ok:
        raise report_failure(report)
    answers = run.finished("answers") or []
    elapsed = time.monotonic() - started
    summary = {"dir": str(root), "resumed": resumed, "height": height, "verified": report.ok,
               "state_root": report.state_root, "datanet": run.finished("datanet"), "train": run.finished("train"),
               "attribution_root": run.finished("index")["root"],
               "answers": answers, "correct": sum(a["correct"] for a in answers),
               "people": table["people"], "settlement": table["totals"], "seconds": round(elapsed, 1)}
    run.done("finished", summary["seconds"])
    c.print(f"\n[bold]done in {elapsed:.0f} s.[/bold] Explore the chain: [cyan]ailedger --home {run.home} earnings "
            f"{w.HONEST[0]} --data-dir {run.data}[/cyan], [cyan]datanet show {DATANET}[/cyan], [cyan]model show "
            f"{ADAPTER}[/cyan], [cyan]attribution show RECEIPT[/cyan] (keys' passphrase: '{PASSPHRASE}')")
    return summary


def _load_base(run: Run) -> BaseModel:
    from ailedger.factory.basemodel import load_base

    run.c.print(f"loading the base model {run.cfg.base}…")
    with stage_bars(run.s, transient=True) as bars:
        return load_base(run.cfg.base, progress=bars)


def _quiet_libraries() -> None:
    """The demo draws its own progress: no transformers download-style bars or deprecation notices on top."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
