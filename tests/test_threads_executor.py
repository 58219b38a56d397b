"""The default executor: bounded concurrency, lazy units, persistent loops."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from evalwire.builtin._loops import ThreadsExecutor
from evalwire.errors import DatasetError
from evalwire.executor import Unit, iter_units
from evalwire.models import Example
from evalwire.unit import Policy, Work


def examples(n: int) -> list[Example]:
    return [Example(str(i), {"i": i}) for i in range(n)]


def make_work(task: Any, concurrency: int = 4) -> Work:
    return Work("exp", task, (), Policy(backoff=0.001, retries=0), concurrency)


@pytest.fixture
def executor() -> Iterator[ThreadsExecutor]:
    ex = ThreadsExecutor(threads=4)
    yield ex
    ex.close()


def test_every_unit_runs_once(executor: ThreadsExecutor) -> None:
    async def task(example: Example) -> int:
        return int(example.input["i"]) * 2

    runs = list(executor.execute(make_work(task), iter_units(examples(50), 2)))
    assert sorted((r.index, r.repetition) for r in runs) == [
        (i, r) for i in range(50) for r in (1, 2)
    ]
    assert all(r.output == r.index * 2 for r in runs)


def test_no_more_than_task_concurrency_units_are_in_flight(executor: ThreadsExecutor) -> None:
    active = peak = 0

    async def task(example: Example) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.005)
        active -= 1

    list(executor.execute(make_work(task, concurrency=5), iter_units(examples(60), 1)))
    assert peak == 5


def test_units_are_pulled_only_as_the_consumer_takes_runs() -> None:
    executor = ThreadsExecutor(threads=2, window=20)
    pulled = 0

    def lazy() -> Iterator[Unit]:
        nonlocal pulled
        for unit in iter_units(examples(1000), 1):
            pulled += 1
            yield unit

    async def task(example: Example) -> None:
        await asyncio.sleep(0)

    stream = executor.execute(make_work(task, concurrency=3), lazy())
    next(stream)
    time.sleep(0.2)  # the loop would run ahead here if nothing held it back
    assert pulled <= 20 + 1
    stream.close()
    executor.close()


def test_async_tasks_share_one_persistent_loop_across_experiments(
    executor: ThreadsExecutor,
) -> None:
    loops = set()

    async def task(example: Example) -> None:
        loops.add(id(asyncio.get_running_loop()))

    for _ in range(3):
        list(executor.execute(make_work(task), iter_units(examples(5), 1)))
    assert len(loops) == 1


def test_sync_tasks_run_concurrently_in_threads(executor: ThreadsExecutor) -> None:
    from evalwire.builtin.callables import evalwire_adapt_task
    from evalwire.config import Config
    from evalwire.models import ExperimentSpec

    def task(input: dict[str, Any]) -> str:
        time.sleep(0.1)
        return threading.current_thread().name

    spec = ExperimentSpec("exp", task)
    adapted = evalwire_adapt_task(task, spec, Config())
    started = time.perf_counter()
    runs = list(executor.execute(make_work(adapted, concurrency=4), iter_units(examples(4), 1)))
    assert time.perf_counter() - started < 0.35
    assert len({r.output for r in runs}) == 4


def test_a_unit_source_error_stops_new_units_but_yields_those_in_flight(
    executor: ThreadsExecutor,
) -> None:
    def broken() -> Iterator[Unit]:
        yield from iter_units(examples(3), 1)
        raise DatasetError("data.jsonl:4: not JSON")

    async def task(example: Example) -> str:
        return "ok"

    seen = []
    with pytest.raises(DatasetError, match="data.jsonl:4"):
        for run in executor.execute(make_work(task), broken()):
            seen.append(run)
    assert len(seen) == 3
