"""The serving benchmark's HTTP pass: the real app under uvicorn in a thread, and a streaming client.

The server helper has a twin in tests/conftest_api.py; benchmarks do not import from tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from ailedger.api.server import run_server_in_thread


@contextmanager
def serve_app(app: Any, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port; yields its base URL, stops the server on exit."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5, timeout_keep_alive=30)
    with run_server_in_thread(uvicorn.Server(config), start_timeout_s) as url:
        yield url


Work = list[tuple[float, list[int], int, str]]  # (arrival s, prompt ids, max_tokens, model) per request


async def stream_schedule(url: str, work: Work) -> tuple[list[float], list[float]]:
    """Send each request at its arrival time as a streaming `/v1/completions`, one asyncio task each.

    Returns, per request and in seconds from the schedule's start, when its first chunk with text
    came and when `[DONE]` came. Every request must end by length with all its tokens (the app is
    built without stop ids), or this raises. One request runs alone first, to warm the app and client.
    """
    n = len(work)
    first, done = [0.0] * n, [0.0] * n
    limits = httpx.Limits(max_connections=n + 1, max_keepalive_connections=n + 1)
    async with httpx.AsyncClient(base_url=url, timeout=None, limits=limits) as client:

        async def one(i: int, t0: float) -> None:
            at, prompt, out, model = work[i]
            await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
            body = {"model": model, "prompt": prompt, "max_tokens": out, "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}}
            finish, tokens = None, 0
            async with client.stream("POST", "/v1/completions", json=body) as resp:
                if resp.status_code != 200:
                    raise RuntimeError(f"HTTP {resp.status_code}: {(await resp.aread())[:300]!r}")
                async for line in resp.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    if line == "data: [DONE]":
                        done[i] = time.perf_counter() - t0
                        break
                    chunk = json.loads(line.removeprefix("data: "))
                    if "error" in chunk:
                        raise RuntimeError(f"request {i} failed: {chunk['error']}")
                    for choice in chunk["choices"]:
                        if choice["text"] and not first[i]:
                            first[i] = time.perf_counter() - t0
                        finish = choice["finish_reason"] or finish
                    if chunk.get("usage"):
                        tokens = chunk["usage"]["completion_tokens"]
            if finish != "length" or tokens != out:
                raise RuntimeError(f"HTTP request {i} ended with {finish!r} after {tokens} of {out} tokens")
            first[i] = first[i] or done[i]  # no chunk carried text (every token decoded to nothing)

        await one(0, time.perf_counter() - work[0][0])  # warm-up
        first[:], done[:] = [0.0] * n, [0.0] * n
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, t0) for i in range(n)))
    return first, done
