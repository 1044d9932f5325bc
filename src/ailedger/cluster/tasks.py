"""A function over chunks as Ray tasks: retried when a worker dies, results handed back in chunk order.

Why in order, and why chunks fixed by the caller: an engine's output must be the single-process
output bit for bit, so the work is cut the same way whatever the cluster (the caller's chunking,
never the number of workers) and reassembled in the caller's order, whichever task finishes first.

A worker that dies mid-task (killed, out of memory, a crashed extension) is a system failure: Ray
runs the task again on a live worker, up to `retries` times, and since a task is a pure function of
its inputs the retried result is the same. An exception the function raises is not retried (it
would raise again): a `LedgerError` comes back to the caller as itself, with its code, anything
else as `cluster_task_failed` naming the chunk.

`imap_ordered` keeps at most `window` tasks in flight, so a stream of a million records is read a
few chunks ahead of the results, never whole.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ailedger.core import errors
from ailedger.core.errors import LedgerError, by_name

T = TypeVar("T")
R = TypeVar("R")
Tick = Callable[[int, int | None], None]  # (chunks done, chunks in all when known)
RETRIES = 3
_CACHE_SIZE = 4
_cache: dict[Any, Any] = {}


@dataclass(frozen=True)
class _Failed:
    """A LedgerError raised inside a task, in a form that survives pickling (its code by name)."""

    code: str
    detail: str


def _call(fn: Callable[..., Any], item: Any, *shared: Any) -> Any:
    """What each Ray task runs: the caller's function, its coded errors carried back as data."""
    try:
        return fn(item, *shared)
    except LedgerError as exc:
        return _Failed(exc.code.name, exc.detail)


def per_worker(key: Any, make: Callable[[], T]) -> T:
    """The value `make()` builds, kept in this worker process under `key` (a loaded model, say).

    Ray reuses a worker process for many tasks, so a model loaded by the first chunk serves the
    next ones. A few keys are kept; beyond that the cache starts again.
    """
    if key not in _cache:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = make()
    value: T = _cache[key]
    return value


def imap_ordered(fn: Callable[..., R], items: Iterable[T], *shared: Any, window: int = 8, retries: int = RETRIES,
                 total: int | None = None, progress: Tick | None = None) -> Iterator[R]:
    """`fn(item, *shared)` for each item, as Ray tasks, yielded in the items' order.

    `fn` must be a module-level function (workers import it by name). `shared` arguments are put in
    the object store once and handed to every task. At most `window` tasks are in flight.
    """
    import ray

    remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_call)
    refs = [ray.put(s) for s in shared]
    flight: deque[tuple[int, Any]] = deque()  # (item's position, its task), in submission order
    source = enumerate(items)
    done = 0
    tick = progress or (lambda done, total: None)
    tick(0, total)

    def submit() -> bool:
        found = next(source, None)
        if found is None:
            return False
        flight.append((found[0], remote.remote(fn, found[1], *refs)))
        return True

    try:
        while len(flight) < max(1, window) and submit():
            pass
        while flight:
            index, ref = flight.popleft()
            result = _gather(ray, ref, index)
            submit()
            done += 1
            tick(done, total)
            yield result
    finally:
        for _, ref in flight:  # interrupted or failed: stop what is still queued or running
            ray.cancel(ref, force=True)


def map_ordered(fn: Callable[..., R], items: Sequence[T], *shared: Any, retries: int = RETRIES,
                progress: Tick | None = None) -> list[R]:
    """`imap_ordered` over a list, every task submitted at once; the results as a list in the items' order."""
    return list(imap_ordered(fn, items, *shared, window=len(items), retries=retries, total=len(items),
                             progress=progress))



def _gather(ray: Any, ref: Any, index: int) -> Any:
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        raise LedgerError(errors.CLUSTER_TASK_FAILED, f"chunk {index}: {exc.cause!r}") from None
    except ray.exceptions.RayError as exc:  # the worker died more often than the retries allow, or lost its result
        raise LedgerError(errors.CLUSTER_TASK_FAILED, f"chunk {index}: {type(exc).__name__}: "
                                                      f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if isinstance(result, _Failed):
        raise LedgerError(by_name(result.code), result.detail)
    return result
