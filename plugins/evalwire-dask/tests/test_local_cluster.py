"""The dask executor on a real ``LocalCluster`` (worker processes on 127.0.0.1).

One cluster serves the module; it lets a task be tried once per worker death
(``allowed_failures=0``) so the test of a unit that kills its worker is quick.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from evalwire.builtin.callables import evalwire_adapt_evaluator, evalwire_adapt_task
from evalwire.config import Config
from evalwire.errors import DatasetError
from evalwire.executor import Executor, Unit, iter_units
from evalwire.models import Example, ExperimentSpec, Run
from evalwire.unit import Policy, Work

from evalwire_dask.cluster import local_cluster
from evalwire_dask.executor import DaskExecutor, DaskExecutorError

if TYPE_CHECKING:
    from evalwire.testing import EvalwireProject

pytest_plugins = ["evalwire.testing"]


@pytest.fixture(scope="module")
def executor() -> Iterator[DaskExecutor]:
    from distributed import Client

    cluster = local_cluster(2, 1, allowed_failures=0)
    client = Client(cluster, set_as_default=False, timeout=30)
    ex = DaskExecutor(client, cluster)
    yield ex
    ex.close()


def examples(n: int) -> list[Example]:
    return [Example(f"ex{i}", {"x": i}, {"x": i}) for i in range(n)]


def work(task: Any, concurrency: int = 4, evaluators: dict[str, Any] | None = None) -> Work:
    """Work as the session builds it: the task and evaluators through the callables adapter."""
    spec = ExperimentSpec("exp", task, evaluators or {})
    adapted = evalwire_adapt_task(task, spec, Config())
    scored = tuple(
        (name, evalwire_adapt_evaluator(e, name, spec, Config()))
        for name, e in (evaluators or {}).items()
    )
    return Work("exp", adapted, scored, Policy(retries=0, backoff=0.01, timeout=10), concurrency)


def keys(runs: list[Run]) -> Counter[tuple[int, int]]:
    return Counter((r.index, r.repetition) for r in runs)


def test_it_is_an_evalwire_executor(executor: DaskExecutor) -> None:
    assert isinstance(executor, Executor)


def test_every_unit_runs_once_and_is_scored(executor: DaskExecutor) -> None:
    def task(input: dict[str, Any]) -> int:
        return int(input["x"]) * 2

    def doubled(output: int, expected: dict[str, Any]) -> bool:
        return output == 2 * expected["x"]

    runs = list(
        executor.execute(work(task, evaluators={"doubled": doubled}), iter_units(examples(150), 3))
    )

    assert keys(runs) == Counter({(i, r): 1 for i in range(150) for r in (1, 2, 3)})
    assert all(r.output == 2 * r.index and r.example.id == f"ex{r.index}" for r in runs)
    assert all(r.evaluations[0].score == 1.0 for r in runs)


def test_an_async_task_runs_concurrently_on_the_workers(executor: DaskExecutor) -> None:
    async def task(input: dict[str, Any]) -> int:
        await asyncio.sleep(0.05)
        return int(input["x"])

    started = time.perf_counter()
    runs = list(executor.execute(work(task, concurrency=50), iter_units(examples(200), 1)))
    elapsed = time.perf_counter() - started

    assert len(runs) == 200
    assert elapsed < 2.5, f"200 units of 50 ms took {elapsed:.2f}s (serial: 10 s)"


def test_sync_tasks_run_concurrently_in_the_workers_threads(executor: DaskExecutor) -> None:
    def task(input: dict[str, Any]) -> str:
        time.sleep(0.2)
        return threading.current_thread().name

    started = time.perf_counter()
    runs = list(executor.execute(work(task, concurrency=8), iter_units(examples(16), 1)))

    assert time.perf_counter() - started < 2.0  # serial: 3.2 s
    assert len({r.output for r in runs}) >= 8


def test_async_tasks_keep_one_event_loop_per_worker_thread(executor: DaskExecutor) -> None:
    async def task(input: dict[str, Any]) -> tuple[int, int, int]:
        return os.getpid(), threading.get_ident(), id(asyncio.get_running_loop())

    outputs = set()
    for _ in range(3):  # three experiments, many batches each
        w = work(task, concurrency=2)
        outputs |= {r.output for r in executor.execute(w, iter_units(examples(120), 1))}

    loops_per_thread = Counter((pid, thread) for pid, thread, _ in outputs)
    assert set(loops_per_thread.values()) == {1}


def test_the_work_is_unpickled_once_per_worker_process_not_per_batch(
    executor: DaskExecutor,
) -> None:
    calls = itertools.count(1)  # travels with the task: one counter per unpickling

    async def task(input: dict[str, Any]) -> tuple[int, int]:
        return os.getpid(), next(calls)

    executor.batch_size = 10
    try:
        runs = list(executor.execute(work(task, concurrency=2), iter_units(examples(80), 1)))
    finally:
        executor.batch_size = None

    counts = Counter(pid for pid, _ in (r.output for r in runs))
    highest = {pid: max(n for p, n in (r.output for r in runs) if p == pid) for pid in counts}
    assert highest == counts  # each process counted every unit it ran, across its batches
    assert max(counts.values()) > 10


def test_a_unit_source_error_stops_new_units_but_yields_those_in_flight(
    executor: DaskExecutor,
) -> None:
    def broken() -> Iterator[Unit]:
        yield from iter_units(examples(73), 1)
        raise DatasetError("data.jsonl:74: not JSON")

    async def task(input: dict[str, Any]) -> int:
        await asyncio.sleep(0.01)
        return int(input["x"])

    seen: list[Run] = []
    with pytest.raises(DatasetError, match="data.jsonl:74"):
        for run in executor.execute(work(task), broken()):
            seen.append(run)
    assert keys(seen) == Counter({(i, 1): 1 for i in range(73)})


def test_an_output_that_cannot_be_pickled_comes_back_as_its_repr(executor: DaskExecutor) -> None:
    def task(input: dict[str, Any]) -> Any:
        return threading.Lock()

    [run] = executor.execute(work(task), iter_units(examples(1), 1))

    assert run.error is None
    assert isinstance(run.output, str) and "lock" in run.output


def test_a_task_that_cannot_be_pickled_is_a_clear_error(executor: DaskExecutor) -> None:
    lock = threading.Lock()

    def task(input: dict[str, Any]) -> bool:
        return lock.locked()

    with pytest.raises(DaskExecutorError, match="cannot be sent to Dask workers.*pickled"):
        list(executor.execute(work(task), iter_units(examples(3), 1)))


def test_a_unit_that_kills_its_worker_fails_alone(executor: DaskExecutor) -> None:
    def task(input: dict[str, Any]) -> int:
        if input["x"] == 3:
            os._exit(1)  # what a segfault or the OOM killer looks like from here
        return int(input["x"])

    executor.batch_size = 2
    try:
        runs = list(executor.execute(work(task), iter_units(examples(6), 1)))
    finally:
        executor.batch_size = None

    assert keys(runs) == Counter({(i, 1): 1 for i in range(6)})
    [crashed] = [r for r in runs if r.index == 3]
    assert crashed.error is not None and "KilledWorker" in crashed.error
    assert all(r.error is None and r.output == r.index for r in runs if r.index != 3)


def test_evalwire_run_starts_a_local_cluster_without_an_address(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: Any
) -> None:
    evalwire_project.config("[dask]\nn_workers = 1\n")
    evalwire_project.experiment(
        "echo",
        "async def task(input):\n    return input['x']\n",
        {"exact": "def exact(output, expected):\n    return output == expected['x']\n"},
        [{"input": {"x": i}, "expected": {"x": i}} for i in range(20)],
    )

    outcome = run_evalwire_subprocess(evalwire_project, "--executor", "dask")

    outcome.assert_passed()
    outcome.assert_score("echo", "exact", 1.0)
    assert outcome.result("echo").completed == 20
