"""``--executor dask`` against a real ``dask scheduler`` and ``dask worker`` pair.

The workers are separate processes started in a scratch folder: they share
nothing with the test but the installed packages, as on a real cluster.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import pytest
from dask_cluster import SchedulerPair, running_pair
from evalwire.executor import iter_units
from evalwire.models import Example
from evalwire.unit import Policy, Work

from evalwire_dask.executor import DaskExecutor, DaskExecutorError

if TYPE_CHECKING:
    from evalwire.testing import EvalwireProject

pytest_plugins = ["evalwire.testing"]


@pytest.fixture(scope="module")
def scheduler_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchedulerPair]:
    """A scheduler and two single-threaded workers on loopback, shared by this module."""
    with running_pair(tmp_path_factory.mktemp("dask-cluster")) as pair:
        yield pair


ECHO = """
def task(input):
    return input["x"]
"""

HALF_RIGHT = """
def half_right(output, expected):
    return output == expected["x"] and output % 2 == 0
"""

EXACT = """
def exact(output, expected):
    return output == expected["x"]
"""


def rows(count: int) -> list[dict[str, Any]]:
    return [{"id": f"ex{i}", "input": {"x": i}, "expected": {"x": i}} for i in range(count)]


def test_scores_are_the_same_as_with_the_threads_executor(
    scheduler_pair: SchedulerPair, evalwire_project: EvalwireProject, run_evalwire_subprocess: Any
) -> None:
    evalwire_project.experiment("echo", ECHO, {"half_right": HALF_RIGHT, "exact": EXACT}, rows(120))
    evalwire_project.experiment(
        "shout",
        "async def task(input):\n    return str(input['x']).upper()\n",
        {"exact": EXACT},
        rows(30),
    )

    threads = run_evalwire_subprocess(evalwire_project, "--repetitions", "2")
    dask = run_evalwire_subprocess(
        evalwire_project,
        "--repetitions",
        "2",
        "--concurrency",  # both experiments at once, on one executor
        "2",
        "--executor",
        "dask",
        "--dask-address",
        scheduler_pair.address,
    )

    threads.assert_passed()
    dask.assert_passed()
    for name in ("echo", "shout"):
        assert dask.scores(name) == threads.scores(name), dask.transcript
        assert dask.result(name).completed == threads.result(name).completed
        assert [(r.index, r.repetition, r.output) for r in dask.runs(name)] == [
            (r.index, r.repetition, r.output) for r in threads.runs(name)
        ]
    dask.assert_score("echo", "half_right", 0.5)
    dask.assert_score("shout", "exact", 0.0)  # strings are not ints, on any executor


def test_a_task_from_an_experiment_folder_runs_on_workers_that_cannot_import_it(
    scheduler_pair: SchedulerPair, evalwire_project: EvalwireProject, run_evalwire_subprocess: Any
) -> None:
    evalwire_project.experiment(
        "local_code",
        """
        from _helpers import Doubler
        from . import _settings

        doubler = Doubler(_settings.FACTOR)

        async def task(input):
            return doubler(input["x"])
        """,
        {
            "doubled": """
            def doubled(output, expected):
                return output.value == 2 * expected["x"]
            """
        },
        rows(40),
        files={
            "_helpers.py": """
            class Doubled:
                def __init__(self, value):
                    self.value = value

            class Doubler:
                def __init__(self, factor):
                    self.factor = factor

                def __call__(self, x):
                    return Doubled(self.factor * x)
            """,
            "_settings.py": "FACTOR = 2\n",
        },
    )

    outcome = run_evalwire_subprocess(
        evalwire_project, "--executor", "dask", "--dask-address", scheduler_pair.address
    )

    outcome.assert_passed()
    outcome.assert_score("local_code", "doubled", 1.0)


def test_an_async_task_keeps_its_concurrency_on_the_workers(
    scheduler_pair: SchedulerPair, evalwire_project: EvalwireProject, run_evalwire_subprocess: Any
) -> None:
    evalwire_project.experiment(
        "sleepy",
        """
        import asyncio

        async def task(input):
            await asyncio.sleep(0.05)
            return input["x"]
        """,
        {"exact": EXACT},
        rows(200),
    )

    outcome = run_evalwire_subprocess(
        evalwire_project,
        "--task-concurrency",
        "50",
        "--executor",
        "dask",
        "--dask-address",
        scheduler_pair.address,
    )

    outcome.assert_passed()
    result = outcome.result("sleepy")
    assert result.completed == 200
    assert result.duration < 3.0, f"200 × 50 ms took {result.duration:.2f}s (serial: 10 s)"


def test_a_worker_killed_mid_run_loses_no_unit_and_records_none_twice(
    scheduler_pair: SchedulerPair,
) -> None:
    async def task(example: Example) -> int:
        await asyncio.sleep(0.02)
        return int(example.input["x"])

    examples = [Example(f"ex{i}", {"x": i}) for i in range(600)]
    work = Work("killed", task, (), Policy(retries=0, backoff=0.01, timeout=10), concurrency=5)
    executor = DaskExecutor.start(scheduler_pair.address, batch_size=20)
    pids = executor.client.run(os.getpid)
    victim = 0
    seen: list[tuple[int, int]] = []
    try:
        for run in executor.execute(work, iter_units(examples, 2)):
            seen.append((run.index, run.repetition))
            assert run.output == run.index and run.error is None
            if not victim and len(seen) >= 100:
                # A worker with a batch running right now.
                busy = [w for w, keys in executor.client.processing().items() if keys]
                if busy:
                    victim = pids[busy[0]]
                    os.kill(victim, signal.SIGKILL)
    finally:
        executor.close()

    assert victim, "no worker was busy to be killed"
    counts = Counter(seen)
    assert set(counts) == {(i, r) for i in range(600) for r in (1, 2)}
    assert max(counts.values()) == 1
    assert victim not in scheduler_pair.worker_pids().values()  # it really died
    scheduler_pair.wait_for_workers(2)  # its nanny restarted it for the next test


def test_units_are_pulled_lazily_and_a_bounded_number_is_in_flight(
    scheduler_pair: SchedulerPair,
) -> None:
    pulled = 0

    def endless() -> Iterator[Any]:
        nonlocal pulled
        for unit in iter_units((Example(str(i), {"x": i}) for i in range(10**9)), 1):
            pulled += 1
            yield unit

    async def task(example: Example) -> int:
        return int(example.input["x"])

    executor = DaskExecutor.start(scheduler_pair.address, batch_size=10, max_in_flight=40)
    try:
        stream = executor.execute(Work("lazy", task, (), Policy(), 5), endless())
        taken = [next(stream) for _ in range(100)]
        time.sleep(0.3)  # nothing is pulled while the consumer does not ask
        assert pulled <= 100 + 40
        stream.close()
    finally:
        executor.close()
    assert len({r.index for r in taken}) == 100


def test_code_the_workers_cannot_import_is_a_clear_error_unless_sent_by_value(
    scheduler_pair: SchedulerPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module importable here (on sys.path) but not on the workers: cloudpickle
    # sends its functions by reference unless told otherwise.
    (tmp_path / "only_here.py").write_text(
        "async def task(example):\n    return example.input['x'] + 1\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    only_here = importlib.import_module("only_here")
    work = Work("only_here", only_here.task, (), Policy(retries=0), concurrency=2)
    units = list(iter_units([Example("a", {"x": 1})], 1))

    executor = DaskExecutor.start(scheduler_pair.address, retries=0)
    try:
        with pytest.raises(DaskExecutorError, match="could not unpickle.*pickle_by_value"):
            list(executor.execute(work, units))
    finally:
        executor.close()

    executor = DaskExecutor.start(scheduler_pair.address, pickle_by_value=["only_here"])
    try:
        [run] = executor.execute(work, units)
    finally:
        executor.close()
        cloudpickle.unregister_pickle_by_value(only_here)
    assert run.output == 2
