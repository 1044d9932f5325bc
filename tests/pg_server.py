"""The tests' PostgreSQL: the package's throwaway server (chain/pg_local.py), and raw SQL behind a node's back."""

from __future__ import annotations

from pathlib import Path

from ailedger.chain.pg_local import PgServer

__all__ = ["PgServer", "execute_sql"]


def execute_sql(data_dir: Path, sql: str) -> None:
    """Run `sql` on a chain's own database behind the node's back (tests that damage a store on purpose).

    SQLite's blob literal x'00' is spelled '\\x00'::bytea in PostgreSQL; nothing else differs here.
    """
    from ailedger.chain.store import DB_NAME, store_url

    url = store_url(data_dir)
    if url is None:
        import sqlite3

        db = sqlite3.connect(data_dir / DB_NAME)
        db.execute(sql)
        db.commit()
        db.close()
        return
    import re

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(re.sub(r"x'([0-9a-fA-F]*)'", r"'\\x\1'::bytea", sql))  # type: ignore[call-overload]
