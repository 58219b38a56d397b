"""Phoenix's own experiment runners on the schedule scenario's work, in a child process.

``python -m benchmarks.phoenix_peers --examples N --concurrency C --sleep S
--runs R --sync-slice K`` prints one JSON object. A child process, because
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.phoenix_peers")
    parser.add_argument("--examples", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--sleep", type=float, required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--sync-slice", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        out = measure(args.examples, args.concurrency, args.sleep, args.runs, args.sync_slice)
    except ImportError as exc:
        out = {"error": f"phoenix client not importable ({exc})"}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
