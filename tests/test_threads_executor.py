"""The default executor: bounded concurrency, lazy units, persistent loops."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
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


# -- sync tasks: the loop's own thread pool ------------------------------------------------


def sync_work(task: Any, concurrency: int = 4, **policy: Any) -> Work:
    from evalwire.builtin.callables import evalwire_adapt_task
    from evalwire.config import Config
    from evalwire.models import ExperimentSpec

    adapted = evalwire_adapt_task(task, ExperimentSpec("exp", task), Config())
    return Work(
        "exp", adapted, (), Policy(**{"backoff": 0.001, "retries": 0, **policy}), concurrency
    )


def test_sync_tasks_see_the_context_variables_of_their_unit(executor: ThreadsExecutor) -> None:
    current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="unset")

    def task(input: dict[str, Any]) -> str:
        return current.get()

    current.set("the caller's")
    runs = list(executor.execute(sync_work(task), iter_units(examples(8), 1)))
    assert [r.output for r in runs] == ["the caller's"] * 8


def test_async_tasks_can_hand_blocking_calls_to_the_loops_threads(
    executor: ThreadsExecutor,
) -> None:
    def blocking(i: int, *, times: int) -> tuple[int, str]:
        return i * times, threading.current_thread().name

    async def task(example: Example) -> tuple[int, str]:
        return await asyncio.to_thread(blocking, example.input["i"], times=3)

    runs = list(executor.execute(make_work(task), iter_units(examples(6), 1)))
    assert sorted(r.output[0] for r in runs) == [0, 3, 6, 9, 12, 15]
    assert all(r.output[1].startswith("evalwire-task-") for r in runs)


def test_a_sync_task_error_is_the_runs_error(executor: ThreadsExecutor) -> None:
    def task(input: dict[str, Any]) -> None:
        raise ValueError(f"bad {input['i']}")

    runs = list(executor.execute(sync_work(task), iter_units(examples(3), 1)))
    assert sorted(r.error or "" for r in runs) == [f"ValueError: bad {i}" for i in range(3)]


def test_a_sync_task_raising_stop_iteration_fails_its_run_without_waiting(
    executor: ThreadsExecutor,
) -> None:
    def task(input: dict[str, Any]) -> None:
        raise StopIteration("empty")

    started = time.perf_counter()
    [run] = executor.execute(sync_work(task, timeout=10), iter_units(examples(1), 1))
    assert time.perf_counter() - started < 5
    assert run.error is not None and "StopIteration" in run.error


def test_a_sync_call_that_times_out_waiting_for_a_thread_is_never_made() -> None:
    executor = ThreadsExecutor(threads=1)
    calls: list[int] = []

    def task(input: dict[str, Any]) -> None:
        calls.append(input["i"])
        time.sleep(1.0)

    runs = list(
        executor.execute(sync_work(task, concurrency=2, timeout=0.5), iter_units(examples(2), 1))
    )
    time.sleep(1.0)  # the first call has returned; the second would have started by now
    executor.close()
    assert all((r.error or "").startswith("TimeoutError") for r in runs)
    assert calls == [0]


def test_sync_task_threads_end_when_the_executor_closes() -> None:
    before = set(threading.enumerate())
    executor = ThreadsExecutor(threads=8)

    def task(input: dict[str, Any]) -> str:
        time.sleep(0.01)
        return threading.current_thread().name

    runs = list(executor.execute(sync_work(task, concurrency=8), iter_units(examples(16), 1)))
    assert all(r.output.startswith("evalwire-task-") for r in runs)
    executor.close()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before:
        assert time.monotonic() < deadline, "a thread outlived the executor"
        time.sleep(0.01)


def test_a_timed_out_sync_task_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            from evalwire.builtin._loops import ThreadsExecutor
            from evalwire.builtin.callables import evalwire_adapt_task
            from evalwire.config import Config
            from evalwire.executor import iter_units
            from evalwire.models import Example, ExperimentSpec
            from evalwire.unit import Policy, Work

            def task(input):
                time.sleep(60)

            adapted = evalwire_adapt_task(task, ExperimentSpec("slow", task), Config())
            work = Work("slow", adapted, (), Policy(timeout=0.2, retries=0), 1)
            executor = ThreadsExecutor(threads=4)
            [run] = executor.execute(work, iter_units([Example("1", {})], 1))
            executor.close()
            print(run.error)
            """
        ),
        encoding="utf-8",
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("TimeoutError"), done.stdout
    assert time.perf_counter() - started < 15
