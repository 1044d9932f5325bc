"""The cluster package on a real local Ray head: ordered results, retries after a worker dies, coded errors.

Also the helpers the engines' Ray tests share: which of this head's workers is running a task now,
and a watcher that SIGKILLs the first one it catches (a worker dying mid-task).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from ailedger.cluster import Cluster, connect, map_ordered
from ailedger.cluster.head import LOOPBACK
from ailedger.cluster.tasks import imap_ordered
from ailedger.core import errors
from ailedger.core.errors import LedgerError
from ailedger.datanet.synth import generate
from tests.anvil_fixture import free_port

REPO = Path(__file__).resolve().parents[1]


def task_workers(cluster: Cluster) -> list[psutil.Process]:
    """This head's worker processes that are running a task now (Ray titles them `ray::<function>`)."""
    assert cluster.temp_dir is not None
    raylets = [p for p in psutil.process_iter(["name", "cmdline"])
               if p.info["name"] == "raylet" and any(cluster.temp_dir in a for a in p.info["cmdline"] or [])]
    busy = []
    for raylet in raylets:
        for child in raylet.children():
            try:
                if (child.cmdline() or [""])[0].startswith("ray::_call"):
                    busy.append(child)
            except psutil.Error:
                continue
    return busy


@contextmanager
def one_worker_killed(cluster: Cluster) -> Iterator[list[int]]:
    """SIGKILL the first worker seen running a task while the block runs; yields the killed pids (one)."""
    killed: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() and not killed:
            for proc in task_workers(cluster):
                os.kill(proc.pid, signal.SIGKILL)
                killed.append(proc.pid)
                break
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join()


# Task functions live at module level: Ray's workers import them by name.
def square_slowly(x: int, delay: float) -> int:
    time.sleep(delay * (5 - x % 5))  # earlier items finish later: the gather must still be in order
    return x * x


def die_once(x: int, marker_dir: str) -> int:
    """Kill this worker the first time item 3 runs (a marker file remembers); give the answer afterwards."""
    marker = Path(marker_dir) / f"died-{x}"
    if x == 3 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return x * x


def always_die(x: int, _: None) -> int:
    os._exit(1)


def refuse(x: int, _: None) -> int:
    raise LedgerError(errors.BAD_ARGUMENT, f"item {x} is refused")


def fail_plainly(x: int, _: None) -> int:
    if x == 5:
        raise ZeroDivisionError(x)
    return x


def test_results_come_back_in_item_order(cluster: Cluster) -> None:
    ticks: list[tuple[int, int | None]] = []
    assert map_ordered(square_slowly, list(range(10)), 0.02, progress=lambda d, t: ticks.append((d, t))) == [
        x * x for x in range(10)]
    assert ticks[0] == (0, 10) and ticks[-1] == (10, 10)
    assert list(imap_ordered(square_slowly, iter(range(7)), 0.0, window=2)) == [x * x for x in range(7)]


def test_a_worker_that_dies_mid_task_is_retried_and_the_result_is_the_same(cluster: Cluster, tmp_path: Path) -> None:
    assert map_ordered(die_once, list(range(8)), str(tmp_path)) == [x * x for x in range(8)]
    died = int((tmp_path / "died-3").read_text())
    assert not psutil.pid_exists(died) or psutil.Process(died).status() == psutil.STATUS_ZOMBIE


def test_a_task_that_keeps_killing_its_worker_fails_with_a_code(cluster: Cluster) -> None:
    with pytest.raises(LedgerError) as caught:
        map_ordered(always_die, [1], None, retries=1)
    assert caught.value.code == errors.CLUSTER_TASK_FAILED and "chunk 0" in caught.value.detail


def test_errors_raised_in_a_task_come_back_with_their_code(cluster: Cluster) -> None:
    with pytest.raises(LedgerError) as coded:
        map_ordered(refuse, [7], None)
    assert coded.value.code == errors.BAD_ARGUMENT and coded.value.detail == "item 7 is refused"
    with pytest.raises(LedgerError) as plain:
        list(imap_ordered(fail_plainly, range(8), None, window=2))
    assert plain.value.code == errors.CLUSTER_TASK_FAILED
    assert plain.value.detail.startswith("chunk 5: ZeroDivisionError")


def test_an_unreachable_address_is_refused_at_once() -> None:
    t = time.perf_counter()
    with pytest.raises(LedgerError) as caught:
        connect("127.0.0.1:1")
    assert caught.value.code == errors.CLUSTER_UNREACHABLE and time.perf_counter() - t < 10
    with pytest.raises(LedgerError) as bad:
        connect("no-port-here")
    assert bad.value.code == errors.CLUSTER_UNREACHABLE


def test_without_ray_option_ray_is_never_imported(tmp_path: Path) -> None:
    """A gate run without --ray, in a fresh interpreter: the `ray` package is not loaded."""
    data = tmp_path / "records.jsonl"
    data.write_text('{"text": "A record about bread, long enough to pass the quality gate of a datanet."}\n')
    code = ("import sys; from typer.testing import CliRunner; from ailedger.cli.main import app; "
            f"r = CliRunner().invoke(app, ['--json', 'datanet', 'check', {str(data)!r}]); "
            "assert r.exit_code == 0, r.output; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "AILEDGER_HOME": str(tmp_path / "home")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def test_a_head_started_by_ray_start_is_joined_by_its_address(tmp_path: Path) -> None:
    """`ray start --head` kept on loopback, with a token in a private HOME; `--ray 127.0.0.1:PORT` joins it.

    The command runs in a fresh process with no Ray settings of its own (no RAY_AUTH_MODE, no
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER): `connect` must find that the head is loopback-only, say the
    driver is at 127.0.0.1 and send the token. Its verdicts are the run without Ray's.
    """
    home = tmp_path / "home"
    home.mkdir()
    temp = tempfile.mkdtemp(prefix="rs-")  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env = {**base_env, "HOME": str(home), "AILEDGER_HOME": str(tmp_path / "ailedger"), "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray_cli, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--port", str(port),
         "--node-ip-address", LOOPBACK, "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats",
         "--temp-dir", temp], env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, token = time.monotonic() + 60, home / ".ray" / "auth_token"
        assert token.is_file()  # so the head asks for it (RAY_AUTH_MODE unset, a token on the machine)
        while not _accepts(port):
            assert time.monotonic() < deadline and head.poll() is None, "ray start --head did not come up"
            time.sleep(0.2)
        data = tmp_path / "records.jsonl"
        data.write_text("".join(json.dumps(t.record) + "\n" for t in generate(300, seed=5)))

        def check(*extra: str) -> Any:
            out = subprocess.run([sys.executable, "-m", "ailedger.cli.main", "--json", "datanet", "check", str(data),
                                  *extra], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
            assert out.returncode == 0, out.stderr[-2000:]
            return json.loads(out.stdout)

        alone, joined = check(), check("--ray", f"{LOOPBACK}:{port}")
        assert joined == alone and alone["summary"]["rejected"] > 0
        listening = {c.laddr.ip for p in psutil.Process(head.pid).children(recursive=True)
                     for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        assert listening and all(ip.endswith("127.0.0.1") for ip in listening), listening  # ::ffff:127.0.0.1 too
    finally:
        head.send_signal(signal.SIGINT)  # `ray start --block` stops its head on Ctrl-C (it ignores SIGTERM)
        try:
            head.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(10)
        for proc in psutil.process_iter(["cmdline"]):  # anything of that head's still alive is killed too
            if any(temp in part for part in proc.info["cmdline"] or []):
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        shutil.rmtree(temp, ignore_errors=True)
