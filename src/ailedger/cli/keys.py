"""`ailedger keys`: passphrase-encrypted key files in HOME/keys, one `NAME.json` each (mode 0600).

The file format and the cryptography live in `core.keystore`; this module only finds, reads and
writes the files and asks for passphrases. The Argon2id cost comes from AILEDGER_KDF_COST
("default", or "test" for test suites: libsodium's minimum, which protects nothing).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ailedger.cli.output import Settings, emit, kv_table, settings
from ailedger.core import errors, keystore
from ailedger.core.address import decode_address, encode_address
from ailedger.core.errors import LedgerError
from ailedger.core.jsondoc import parse_object
from ailedger.core.keys import KeyPair

PASSPHRASE_ENV = "AILEDGER_PASSPHRASE"
KDF_COST_ENV = "AILEDGER_KDF_COST"
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")

PassphraseFile = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="Read the passphrase from this file (first line). Default: $AILEDGER_PASSPHRASE, "
    "else a hidden prompt.", dir_okay=False)]


def kdf_cost() -> tuple[int, int]:
    name = os.environ.get(KDF_COST_ENV) or "default"
    if name not in keystore.COSTS:
        raise LedgerError(errors.BAD_ARGUMENT, f"{KDF_COST_ENV}={name!r}; use one of {', '.join(keystore.COSTS)}")
    return keystore.COSTS[name]


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc.__class__.__name__}: {exc}") from exc


def read_json_object(path: Path, code: errors.ErrorCode) -> dict[str, Any]:
    """A file that must hold one JSON object; anything else is `code` (a damaged keystore, a bad genesis...)."""
    return parse_object(read_text(path), code, str(path))


def get_passphrase(passphrase_file: Path | None, confirm: bool = False) -> str:
    """--passphrase-file, else $AILEDGER_PASSPHRASE, else a hidden prompt when a terminal is attached."""
    if passphrase_file is not None:
        lines = read_text(passphrase_file).splitlines()
        if not lines or not lines[0]:
            raise LedgerError(errors.NO_PASSPHRASE, f"{passphrase_file} is empty")
        return lines[0]
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    if not sys.stdin.isatty():
        raise LedgerError(errors.NO_PASSPHRASE, "no terminal to prompt on")
    value: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    if not value:
        raise LedgerError(errors.NO_PASSPHRASE, "the passphrase is empty")
    return value


class KeyDir:
    """The keystore directory: name <-> file, with permissions kept private."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, name: str) -> Path:
        if not _NAME.match(name):
            raise LedgerError(errors.BAD_KEY_NAME, repr(name))
        return self.path / f"{name}.json"

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.stem for p in self.path.glob("*.json") if _NAME.match(p.stem))

    def load(self, name: str) -> dict[str, Any]:
        path = self.file(name)
        if not path.exists():
            raise LedgerError(errors.KEY_NOT_FOUND, name)
        return read_json_object(path, errors.KEYSTORE_CORRUPT)

    def info(self, name: str) -> keystore.KeystoreInfo:
        try:
            return keystore.keystore_info(self.load(name))
        except LedgerError as exc:
            raise LedgerError(exc.code, f"{self.file(name)}: {exc.detail}" if exc.detail else name) from exc

    def unlock(self, name: str, passphrase: str) -> KeyPair:
        try:
            return KeyPair.from_seed(keystore.decrypt_key(self.load(name), passphrase))
        except LedgerError as exc:
            raise LedgerError(exc.code, f"{self.file(name)}: {exc.detail}" if exc.detail else name) from exc

    def save(self, name: str, doc: dict[str, Any]) -> Path:
        path = self.file(name)
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise LedgerError(errors.KEY_EXISTS, name) from None
        except OSError as exc:
            raise LedgerError(errors.FILE_UNREADABLE, f"{path}: {exc}") from exc
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        return path

    def create(self, name: str, passphrase: str, key: KeyPair | None = None) -> tuple[KeyPair, Path]:
        self.file(name)  # validate the name before spending time on the KDF
        if self.file(name).exists():
            raise LedgerError(errors.KEY_EXISTS, name)
        key = key or KeyPair.generate()
        opslimit, memlimit = kdf_cost()
        doc = keystore.encrypt_key(key.seed, passphrase, name, opslimit=opslimit, memlimit=memlimit)
        return key, self.save(name, doc)

    def resolve(self, text: str) -> str:
        """An address as given, or the address of the key named `text`."""
        if text.lower().startswith("al1") and len(text) == 41:
            return encode_address(decode_address(text))
        if _NAME.match(text) and self.file(text).exists():
            return self.info(text).address
        if text.lower().startswith("al1"):
            return encode_address(decode_address(text))  # a mistyped address: say so, with its reason
        raise LedgerError(errors.KEY_NOT_FOUND, f"{text!r} is neither an address nor a key name")


def key_dir(s: Settings) -> KeyDir:
    return KeyDir(s.keys_dir)


def _info_json(info: keystore.KeystoreInfo, path: Path) -> dict[str, Any]:
    return {"name": info.name, "address": info.address, "public_key": info.public_key.hex(), "file": str(path),
            "kdf": {"name": info.kdf, "opslimit": info.opslimit, "memlimit": info.memlimit}}


app = typer.Typer(help="Create and inspect passphrase-encrypted keys (HOME/keys).", no_args_is_help=True)


@app.command("new")
def new(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Name of the new key.")],
        passphrase_file: PassphraseFile = None) -> None:
    """Generate a key and save it encrypted under a passphrase."""
    s = settings(ctx)
    keys = key_dir(s)
    keys.file(name)
    if keys.file(name).exists():
        raise LedgerError(errors.KEY_EXISTS, name)
    key, path = keys.create(name, get_passphrase(passphrase_file, confirm=True))
    data = _info_json(keys.info(name), path)
    emit(s, data, lambda c: c.print(kv_table(f"key {name} created", [
        ("address", key.address_text), ("public key", key.public_key.hex()), ("file", path)])))


@app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """List the keys in HOME/keys (no passphrase needed)."""
    s = settings(ctx)
    keys = key_dir(s)
    rows: list[dict[str, Any]] = []
    for name in keys.names():
        try:
            rows.append({"name": name, "address": keys.info(name).address})
        except LedgerError as exc:
            rows.append({"name": name, "address": None, "error": exc.code.name})

    def render(c: Any) -> None:
        if not rows:
            c.print(f"no keys in {escape(str(keys.path))}; create one with `ailedger keys new NAME`")
        for r in rows:
            c.print(f"[bold]{r['name']:<16}[/bold] {r['address'] or '[red]' + r['error'] + '[/red]'}")

    emit(s, rows, render)


@app.command("show")
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Key name.")]) -> None:
    """Show a key's address and public key (never its secret)."""
    s = settings(ctx)
    keys = key_dir(s)
    info = keys.info(name)
    data = _info_json(info, keys.file(name))
    emit(s, data, lambda c: c.print(kv_table(f"key {name}", [
        ("address", info.address), ("public key", info.public_key.hex()), ("file", keys.file(name)),
        ("kdf", f"{info.kdf} (ops {info.opslimit}, mem {info.memlimit // 1024} KiB)")])))
