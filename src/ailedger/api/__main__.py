"""`python -m ailedger.api --data-dir D [--host H] [--port P] [--block-interval S]`: run a node's HTTP API.

argparse rather than the Typer CLI keeps the start fast; `ailedger node run` calls the same `serve`.
"""

from __future__ import annotations

import argparse
import sys

from ailedger.api.server import DEFAULT_HOST, DEFAULT_PORT, serve
from ailedger.core.errors import LedgerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ailedger.api", description="Serve a node's HTTP API.")
    parser.add_argument("--data-dir", required=True, help="the chain's data directory (made by `chain init`)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port, 0 for any free one "
                        f"(default {DEFAULT_PORT})")
    parser.add_argument("--block-interval", type=float, default=0.5, metavar="SECONDS",
                        help="seconds between blocks while transactions are pending; for a replica, "
                        "between asks for new blocks (default 0.5)")
    parser.add_argument("--follow", metavar="URL", help="run a read replica of the node at URL (docs/replicas.md)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="API processes sharing the port (more than 1 needs a chain in PostgreSQL)")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    try:
        if args.workers > 1:
            from pathlib import Path

            from ailedger.api.workers import serve_workers

            serve_workers(Path(args.data_dir), args.host, args.port, args.block_interval, args.workers,
                          log_level=args.log_level)
            return 0
        serve(args.data_dir, args.host, args.port, args.block_interval, log_level=args.log_level,
              follow=args.follow)
    except LedgerError as exc:
        print(f"error: {exc.code.name}: {exc.code.message}" + (f" ({exc.detail})" if exc.detail else ""),
              file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
