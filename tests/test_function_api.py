"""run_experiment / async_run_experiment: Phoenix's signature, evalwire's engine."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from evalwire import Dataset, Example, async_run_experiment, run_experiment

DATASET = Dataset("nums", [Example(str(i), {"n": i}, {"n": 2 * i}) for i in range(40)])
QUIET: dict[str, Any] = {"print_summary": False, "plugin_args": ["no:console"]}


def exact(output: int, expected: dict[str, int]) -> bool:
    return output == expected["n"]


def test_a_sync_task_runs_examples_concurrently_unlike_phoenixs() -> None:
    def slow_double(input: dict[str, int]) -> int:
        time.sleep(0.05)
        return input["n"] * 2

    started = time.perf_counter()
    ran = run_experiment(
        dataset=DATASET, task=slow_double, evaluators=[exact], concurrency=20, **QUIET
    )
    assert time.perf_counter() - started < 40 * 0.05 / 2  # one at a time would take 2 s
    assert len(ran.task_runs) == 40 and all(e.score == 1.0 for e in ran.evaluation_runs)


def test_evaluators_may_be_one_callable_a_list_or_a_dict() -> None:
    async def double(input: dict[str, int]) -> int:
        return input["n"] * 2

    for evaluators, name in ((exact, "exact"), ([exact], "exact"), ({"same": exact}, "same")):
        ran = run_experiment(dataset=DATASET, task=double, evaluators=evaluators, **QUIET)
        assert {e.name for e in ran.evaluation_runs} == {name}


def test_a_phoenix_shaped_dataset_is_accepted_and_its_ids_kept() -> None:
    phoenix_like = SimpleNamespace(
        id="RGF0YXNldDox",
        name="qa",
        version_id="RGF0YXNldFZlcnNpb246MQ==",
        examples=[{"id": "ex1", "input": {"n": 1}, "output": {"n": 2}, "metadata": {"src": "x"}}],
    )
    ran = run_experiment(
        dataset=phoenix_like, task=lambda input: input["n"] * 2, evaluators=[exact], **QUIET
    )
    assert ran.dataset_id == "RGF0YXNldDox" and ran.dataset_version_id == "RGF0YXNldFZlcnNpb246MQ=="
    assert ran.task_runs[0].example_id == "ex1" and ran.evaluation_runs[0].score == 1.0


def test_task_failures_are_recorded_on_runs_not_raised() -> None:
    def broken(input: dict[str, int]) -> int:
        raise RuntimeError("model down")

    ran = run_experiment(dataset=DATASET, task=broken, retries=0, **QUIET)
    assert all(r.error == "RuntimeError: model down" for r in ran.task_runs)


def test_metadata_name_and_repetitions_are_kept() -> None:
    ran = run_experiment(
        dataset=DATASET,
        task=lambda input: 0,
        experiment_name="baseline",
        experiment_metadata={"model": "small"},
        repetitions=2,
        **QUIET,
    )
    assert ran.result is not None and ran.result.experiment_name == "baseline"
    assert ran.experiment_metadata == {"model": "small"} and len(ran.task_runs) == 80


def test_the_async_function_does_not_block_the_callers_loop() -> None:
    async def double(input: dict[str, int]) -> int:
        await asyncio.sleep(0.01)
        return input["n"] * 2

    async def main() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        tick_task = asyncio.create_task(ticker())
        ran = await async_run_experiment(dataset=DATASET, task=double, evaluators=[exact], **QUIET)
        tick_task.cancel()
        return len(ran.task_runs), ticks

    runs, ticks = asyncio.run(main())
    assert runs == 40 and ticks > 5
