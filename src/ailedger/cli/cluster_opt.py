"""`--ray ADDRESS|auto`: the option the heavy commands share, and the cluster it opens for one command.

Without the option nothing changes and Ray is never imported; with it the command's chunks of work
run as Ray tasks (`ailedger.cluster`) and its results are the same bit for bit (docs/ray.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ailedger.cluster import Cluster

RayOpt = Annotated[str | None, typer.Option(
    "--ray", metavar="ADDRESS", help="Run the heavy work as Ray tasks on the cluster whose head is at ADDRESS "
                                     "(HOST:PORT), or `auto` to start a local head on 127.0.0.1 for this command. "
                                     "The results are identical to a run without it (docs/ray.md).")]


@contextmanager
def cluster_for(address: str | None) -> Iterator[Cluster | None]:
    """The cluster `--ray` names, closed (and a head started for it stopped) when the command ends; None without it."""
    if address is None:
        yield None
        return
    from ailedger.cluster import connect

    with connect(address) as cluster:
        yield cluster
