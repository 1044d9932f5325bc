"""The block feed replicas follow: `GET /v1/chain/blocks?from=H&limit=K`, canonical block bytes.

Why bytes and not the JSON of `/v1/blocks/{h}`: a replica re-executes blocks and needs only the
header bytes, the signature and the raw transactions, which is what the feed answers
(`chain.replication.FEED_WIRE`, docs/replicas.md); decoding every payload into JSON would cost the
primary more than reading the block. The answer carries the head height in `x-ailedger-height`, is
empty when `from` is past the head, and stops at `limit` blocks or about 16 MiB, whichever comes first.
Every node serves it, replicas too, so a replica can follow another replica.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import Response

from ailedger.chain.block import Block
from ailedger.chain.node import Node
from ailedger.chain.replication import HEIGHT_HEADER, MAX_FEED_BLOCKS, MAX_FEED_BYTES, encode_feed
from ailedger.core.encoding import MAX_AMOUNT


def add_replication_routes(app: FastAPI, node: Node) -> None:
    @app.get("/v1/chain/blocks")
    def block_feed(start: Annotated[int, Query(alias="from", ge=0, le=MAX_AMOUNT)],
                   limit: Annotated[int, Query(ge=1, le=MAX_FEED_BLOCKS)] = 32) -> Response:
        """Blocks `from`, `from`+1, ... as canonical bytes (application/octet-stream)."""
        head = node.store.height()
        blocks: list[Block] = []
        size = 0
        for height in range(start, min(head, start + limit - 1) + 1):
            block = node.store.block(height)
            blocks.append(block)
            size += sum(map(len, block.txs)) + 200
            if size >= MAX_FEED_BYTES:
                break
        return Response(encode_feed(blocks), media_type="application/octet-stream",
                        headers={HEIGHT_HEADER: str(head)})
