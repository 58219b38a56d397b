"""Every wait is bounded: a cluster that cannot make progress ends the experiment with a reason.

These use small in-process clusters (worker threads in this process), which
start in a fraction of a second; the worker-process behaviour is tested in
the other modules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_cluster import running_pair
from evalwire.executor import iter_units
from evalwire.models import Example
from evalwire.unit import Policy, Work

from evalwire_dask.executor import DaskExecutor, DaskExecutorError


def in_process_executor(n_workers: int, **options: Any) -> DaskExecutor:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
    )
    client = Client(cluster, set_as_default=False, timeout=5)
    return DaskExecutor(client, cluster, **options)


@pytest.fixture
def make_executor() -> Iterator[Any]:
    made: list[DaskExecutor] = []

    def make(n_workers: int = 1, **options: Any) -> DaskExecutor:
        made.append(in_process_executor(n_workers, **options))
        return made[-1]

    yield make
    for executor in made:
        executor.close()


def sleepy_work(seconds: float) -> Work:
    async def task(example: Example) -> int:
        await asyncio.sleep(seconds)
        return 1

    return Work("slow", task, (), Policy(retries=0, timeout=30), concurrency=4)


def examples(n: int) -> list[Example]:
    return [Example(str(i), {"x": i}) for i in range(n)]


def test_a_cluster_without_workers_is_an_error_not_a_hang(make_executor: Any) -> None:
    executor = make_executor(n_workers=0, no_workers_timeout=1.0)

    started = time.monotonic()
    with pytest.raises(DaskExecutorError, match="has had no workers for 1 s"):
        list(executor.execute(sleepy_work(0), iter_units(examples(5), 1)))
    assert time.monotonic() - started < 10


def test_a_batch_that_never_finishes_is_an_error_after_the_stall_timeout(
    make_executor: Any,
) -> None:
    executor = make_executor(stall_timeout=0.5)

    with pytest.raises(DaskExecutorError, match="no batch finished .* in 0.5 s"):
        list(executor.execute(sleepy_work(3.0), iter_units(examples(2), 1)))


def test_losing_the_scheduler_is_an_error_not_a_hang(tmp_path: Path) -> None:
    with running_pair(tmp_path, nworkers=1) as pair:
        executor = DaskExecutor.start(pair.address)
        try:
            runs = executor.execute(sleepy_work(0.2), iter_units(examples(400), 1))
            next(runs)
            os.kill(pair.scheduler.pid, signal.SIGKILL)
            started = time.monotonic()
            with pytest.raises(DaskExecutorError, match="lost the connection to the Dask sched"):
                list(runs)
            assert time.monotonic() - started < 10
        finally:
            executor.close()


def test_the_executor_refuses_work_after_close(make_executor: Any) -> None:
    executor = make_executor()
    executor.close()

    with pytest.raises(DaskExecutorError, match="did not start"):
        executor.execute(sleepy_work(0), iter_units(examples(1), 1))
