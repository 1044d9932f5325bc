"""Scale-out on Ray: the heavy engines' chunks of work as Ray tasks, results gathered in order.

Two rooms: `head` connects to a cluster (or starts a local head on loopback) and shuts it down;
`tasks` maps a function over chunks as retried Ray tasks and hands the results back in chunk order,
so that an engine's output (hashes, index files, roots) is the single-process output bit for bit.
Ray is imported only when a cluster is asked for: without `--ray` nothing here loads it.
"""

from ailedger.cluster.head import AUTO, Cluster, connect
from ailedger.cluster.tasks import imap_ordered, map_ordered, per_worker

__all__ = ["AUTO", "Cluster", "connect", "imap_ordered", "map_ordered", "per_worker"]
