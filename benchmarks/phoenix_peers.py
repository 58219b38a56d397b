"""Phoenix's own experiment runners, in a child process, for two scenarios.

``python -m benchmarks.phoenix_peers --examples N --concurrency C --sleep S
--runs R --sync-slice K`` (the schedule scenario) prints one JSON object.

``python -m benchmarks.phoenix_peers --record URL --dataset-id ID --concurrency C
--sleep S`` (the phoenix_recording scenario) imports the client, prints
``{"ready": ..., "import_s": ...}``, then for every line read from stdin runs
Phoenix's ``AsyncClient(...).experiments.run_experiment`` once on that dataset,
recording into the server at URL, and prints one JSON line with its wall time;
the parent interleaves these with its own measurements. A child process, because
with the ``arize-phoenix`` server installed ``import phoenix.client`` imports
the server too (``phoenix/__init__.py``: seconds of CPU, hundreds of MB, and
millions of objects every later GC pass would walk), which would skew every
measurement taken after it in the same process. The import is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

DEAD_PORT_URL = "http://127.0.0.1:9"  # a dry run never calls the server


def phoenix_dataset(examples: int) -> Any:
    """A Phoenix ``Dataset`` held in memory, shaped as the server returns it."""
    from phoenix.client.resources.datasets import Dataset

    stamp = "2024-01-01T00:00:00+00:00"
    rows = [
        {
            "id": f"ex{i}",
            "node_id": f"node{i}",
            "input": {"q": i},
            "output": {"a": i},
            "metadata": {},
            "updated_at": stamp,
        }
        for i in range(examples)
    ]
    info: dict[str, Any] = {
        "id": "bench",
        "name": "bench",
        "description": None,
        "metadata": {},
        "created_at": stamp,
        "updated_at": stamp,
        "example_count": examples,
    }
    examples_data: Any = {"dataset_id": "bench", "version_id": "v1", "examples": rows}
    return Dataset(info, examples_data)  # type: ignore[arg-type]


def check(ran: Any) -> dict[str, int]:
    task_runs = ran["task_runs"]
    # Example i (node id "node{i}", Phoenix's dataset_example_id) has input {"q": i}.
    correct = sum(1 for r in task_runs if f"node{r.get('output')}" == r.get("dataset_example_id"))
    return {
        "task_runs": len(task_runs),
        "errors": sum(1 for r in task_runs if r.get("error")),
        "correct": correct,
    }


@contextlib.contextmanager
def _silenced() -> Any:
    with open(os.devnull, "w", encoding="utf-8") as null:
        with contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
            yield


def measure(
    examples: int, concurrency: int, sleep: float, runs: int, sync_slice: int
) -> dict[str, Any]:
    started = time.perf_counter()
    from phoenix.client import AsyncClient, Client
    from phoenix.client.experiments import async_run_experiment, run_experiment

    out: dict[str, Any] = {
        "import_s": time.perf_counter() - started,
        "slice": sync_slice,
        "checks": {},
    }

    async def atask(input: dict[str, Any]) -> Any:
        await asyncio.sleep(sleep)
        return input["q"]

    def stask(input: dict[str, Any]) -> Any:
        time.sleep(sleep)
        return input["q"]

    dataset = phoenix_dataset(examples)
    out["async_runs"] = []
    for _ in range(runs):
        aclient = AsyncClient(base_url=DEAD_PORT_URL)
        with _silenced():
            t0 = time.perf_counter()
            ran = asyncio.run(
                async_run_experiment(
                    dataset=dataset,
                    task=atask,
                    dry_run=examples,
                    concurrency=concurrency,
                    print_summary=False,
                    client=aclient,
                )
            )
            out["async_runs"].append(time.perf_counter() - t0)
        out["checks"]["async"] = check(ran)

    small = phoenix_dataset(sync_slice)
    out["sync_runs"] = []
    for _ in range(runs):
        client = Client(base_url=DEAD_PORT_URL)
        with _silenced():
            t0 = time.perf_counter()
            ran = run_experiment(
                dataset=small, task=stask, dry_run=sync_slice, print_summary=False, client=client
            )
            out["sync_runs"].append(time.perf_counter() - t0)
        out["checks"]["sync"] = check(ran)
    return out


def record(url: str, dataset_id: str, concurrency: int, sleep: float) -> None:
    """Serve timed ``run_experiment`` calls into the server at ``url``, one per stdin line."""
    started = time.perf_counter()
    try:
        from phoenix.client import AsyncClient
    except ImportError as exc:
        print(json.dumps({"error": f"phoenix client not importable ({exc})"}), flush=True)
        return
    print(json.dumps({"ready": True, "import_s": time.perf_counter() - started}), flush=True)

    async def task(input: dict[str, Any]) -> Any:
        await asyncio.sleep(sleep)
        return input["q"]

    def correct(output: Any, expected: dict[str, Any]) -> bool:
        return bool(output == expected["a"])

    async def once() -> dict[str, Any]:
        # Timed as `evalwire run --phoenix` is: fetching the dataset, creating the
        # experiment, the tasks with their runs posted, the evaluations posted.
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        client = AsyncClient(base_url=url)
        dataset = await client.datasets.get_dataset(dataset=dataset_id)
        ran = await client.experiments.run_experiment(
            dataset=dataset,
            task=task,
            evaluators=[correct],
            concurrency=concurrency,
            print_summary=False,
        )
        wall = time.perf_counter() - t0
        evaluations = ran["evaluation_runs"]
        return {
            "wall": wall,
            "cpu": time.process_time() - cpu0,
            "experiment_id": ran["experiment_id"],
            "task_runs": len(ran["task_runs"]),
            "errors": sum(1 for r in ran["task_runs"] if r.get("error")),
            "evaluations": len(evaluations),
            "evaluation_errors": sum(1 for e in evaluations if e.error),
        }

    for _ in sys.stdin:
        try:
            with _silenced():
                out = asyncio.run(once())
        except Exception as exc:
            out = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(out), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.phoenix_peers")
    parser.add_argument("--examples", type=int)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--sleep", type=float, required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--sync-slice", type=int)
    parser.add_argument("--record", metavar="URL", help="serve timed recorded runs (see above)")
    parser.add_argument("--dataset-id", metavar="ID")
    args = parser.parse_args(argv)
    if args.record:
        if not args.dataset_id:
            parser.error("--record needs --dataset-id")
        record(args.record, args.dataset_id, args.concurrency, args.sleep)
        return 0
    if args.examples is None or args.sync_slice is None:
        parser.error("--examples and --sync-slice are required without --record")
    try:
        out = measure(args.examples, args.concurrency, args.sleep, args.runs, args.sync_slice)
    except ImportError as exc:
        out = {"error": f"phoenix client not importable ({exc})"}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
