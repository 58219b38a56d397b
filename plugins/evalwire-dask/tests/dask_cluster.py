"""Real Dask clusters for the tests, bound to 127.0.0.1, with no dashboard.

A plain module (not a conftest) so the tests that use it say so with an
import. :func:`running_pair` starts ``dask scheduler`` and ``dask worker`` as
subprocesses, as a user running a cluster by hand would; the workers run in a
scratch folder, so nothing of a test's experiments is importable there by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Seconds a cluster may take to come up before the fixture gives up.
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SchedulerPair:
    """A ``dask scheduler`` and a ``dask worker --nworkers 2`` started by the tests."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: subprocess.Popen[bytes]
    logs: Path

    def worker_pids(self) -> dict[str, int]:
        """The process id of every worker now connected, by worker address."""
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return dict(client.run(os.getpid))

    def wait_for_workers(self, count: int = 2, timeout: float = START_TIMEOUT) -> None:
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)


def _start(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so teardown can stop the nannies' children too
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    try:  # worker processes the nannies left behind
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def running_pair(scratch: Path, nworkers: int = 2) -> Iterator[SchedulerPair]:
    """``dask scheduler`` + ``dask worker --nworkers N --nthreads 1`` on free loopback ports."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _start(
        [
            sys.executable,
            "-m",
            "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
            # Even without a dashboard the scheduler serves health checks;
            # keep them on loopback too.
            "--dashboard-address",
            "127.0.0.1:0",
        ],
        scratch,
        scratch / "scheduler.log",
    )
    workers = _start(
        [
            sys.executable,
            "-m",
            "dask",
            "worker",
            address,
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--nworkers",
            str(nworkers),
            "--nthreads",
            "1",
            "--local-directory",
            str(scratch / "workers"),
        ],
        scratch,
        scratch / "workers.log",
    )
    pair = SchedulerPair(address, scheduler, workers, scratch)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if scheduler.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "dask scheduler did not start:\n"
                        + (scratch / "scheduler.log").read_text(errors="replace")
                    ) from None
                time.sleep(0.1)
        pair.wait_for_workers(nworkers)
        yield pair
    finally:
        _stop(workers)
        _stop(scheduler)
