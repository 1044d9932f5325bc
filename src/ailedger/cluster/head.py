"""Connecting to a Ray cluster, or starting a local head on loopback, and leaving it cleanly.

`--ray ADDRESS` names a running cluster (`host:port` of its head, as `ray start --head` prints, or a
`ray://host:port` client address); `--ray auto` starts a private head for this command on
127.0.0.1, with no dashboard, no usage statistics and its logs in a temporary directory, and stops
it at the end. Why check the address with a plain TCP connect first: Ray itself retries an
unreachable head for minutes before it gives up, and a user who typed a wrong port deserves a
coded error at once.

Ray reads some settings once, when it is first imported, so `auto` sets them in the environment
before the import: `RAY_USAGE_STATS_ENABLED=0`, and `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, without
which Ray swaps 127.0.0.1 for the machine's outward address and listens there.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ailedger.core import errors
from ailedger.core.errors import LedgerError

AUTO = "auto"
LOOPBACK = "127.0.0.1"
_REACH_S = 5.0  # how long a head's port may take to accept a connection before we say it is unreachable


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise LedgerError(errors.CLUSTER_MISSING, str(exc)) from exc
    return ray


def _host_port(address: str) -> tuple[str, int]:
    bare = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LedgerError(errors.CLUSTER_UNREACHABLE, f"{address!r} is not HOST:PORT (nor `{AUTO}`)")
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=_REACH_S):
            pass
    except OSError as exc:
        raise LedgerError(errors.CLUSTER_UNREACHABLE, f"{address}: {exc}") from exc


@dataclass
class Cluster:
    """A connection to Ray from this process; `close` (or leaving `with`) disconnects, stopping a head we started."""

    address: str
    started: bool  # a local head this process started (and so must stop)
    owned: bool  # this process called ray.init (False: it found Ray already initialised and borrows it)
    temp_dir: str | None = None
    _open: bool = field(default=True, repr=False)

    @property
    def workers(self) -> int:
        """The CPUs the cluster offers: how many one-CPU tasks run at once."""
        ray = _import_ray()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        if self.owned:
            _import_ray().shutdown()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def connect(address: str, num_cpus: int | None = None) -> Cluster:
    """Join the cluster at `address`, or start a local head on loopback for `auto` (with `num_cpus` worker CPUs).

    A process that is already connected (a test's fixture, an embedding program) keeps its
    connection: the returned Cluster borrows it and leaves it open on close.
    """
    local = address == AUTO
    if local:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        if "ray" not in sys.modules:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    else:
        _check_reachable(address)
    ray = _import_ray()
    if ray.is_initialized():
        return Cluster(str(ray.get_runtime_context().gcs_address), started=False, owned=False)
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning",
                              "configure_logging": True}
    if not local:
        try:
            ctx = ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise LedgerError(errors.CLUSTER_UNREACHABLE, f"{address}: {exc}") from exc
        return Cluster(str(ctx.address_info.get("address", address)), started=False, owned=True)
    temp = tempfile.mkdtemp(prefix="ailedger-ray-")  # short: Ray's socket paths must fit in 107 bytes
    try:
        ctx = ray.init(num_cpus=num_cpus, _node_ip_address=LOOPBACK, _temp_dir=temp, **common)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return Cluster(str(ctx.address_info["address"]), started=True, owned=True, temp_dir=temp)
