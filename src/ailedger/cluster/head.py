"""Connecting to a Ray cluster, or starting a local head on loopback, and leaving it cleanly.

`--ray ADDRESS` names a running cluster (`host:port` of its head, as `ray start --head` prints, or a
`ray://host:port` client address); `--ray auto` starts a private head for this command on
127.0.0.1, with no dashboard, no usage statistics and its logs in a temporary directory, and stops
it at the end. Why check the address with a plain TCP connect first: Ray itself retries an
unreachable head for minutes before it gives up, and a user who typed a wrong port deserves a
coded error at once.

Ray reads some settings once, when it is first imported, so they are set in the environment
before the import: for `auto`, `RAY_USAGE_STATS_ENABLED=0`; for `auto` and for a loopback-only
head, `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, without which Ray swaps 127.0.0.1 for the machine's
outward address.

Which head `127.0.0.1:PORT` is: one started plainly (`ray start --head`) listens on every
interface and registered its node under the outward address, where a driver finds it by default;
one kept on loopback (as `auto` and the tests start them) registered its node under 127.0.0.1, and
a driver must say it is at 127.0.0.1 too, or Ray looks for the node elsewhere and gives up after a
minute. So a loopback address is first checked for whether the head's port also answers on the
outward address.

Tokens: a head started by `ray start` asks for a token by default, and Ray sends one only to heads
it finds by itself, never to an address it is given. So when this machine holds a token
(`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH`, or `~/.ray/auth_token` as `ray start` writes it) and
`RAY_AUTH_MODE` is unset, `--ray ADDRESS` sets `RAY_AUTH_MODE=token`; a head without token
authentication accepts such a driver too.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
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


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _outward_ip() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), None without one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            found = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if _is_loopback(found) else found


def _loopback_only(port: int) -> bool:
    """Whether the head on this machine at `port` listens on loopback alone (not on the outward address)."""
    outward = _outward_ip()
    if outward is None:
        return True
    try:
        with socket.create_connection((outward, port), timeout=1.0):
            return False
    except OSError:
        return True


def _token_available() -> bool:
    """Whether Ray would find an authentication token on this machine (env, env path, or ~/.ray/auth_token)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return Path(path).is_file() if path else (Path.home() / ".ray" / "auth_token").is_file()


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
    loopback = local
    if not local and not address.startswith("ray://"):
        host, port = _host_port(address)
        loopback = _is_loopback(host) and _loopback_only(port)
    if local:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    else:
        _check_reachable(address)
        if "RAY_AUTH_MODE" not in os.environ and _token_available():
            os.environ["RAY_AUTH_MODE"] = "token"
    if loopback and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = _import_ray()
    if ray.is_initialized():
        return Cluster(str(ray.get_runtime_context().gcs_address), started=False, owned=False)
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning",
                              "configure_logging": True}
    if not local:
        at = {"_node_ip_address": LOOPBACK} if loopback else {}  # this driver, on the head's own machine
        try:
            ctx = ray.init(address=address, **common, **at)
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
