"""Benchmark: the dask executor against the threads executor on many short async tasks.

    python bench.py                     # 10,000 examples, 10 ms each, task_concurrency 50
    python bench.py --examples 2000 --repeat 1
    python bench.py --dask-address tcp://127.0.0.1:8786   # an existing cluster too

Two measurements, each the median of ``--repeat`` runs:

* command line: ``evalwire run`` in a subprocess, as a user runs it, on a
  throw-away project with one experiment whose task awaits
  ``asyncio.sleep(0.01)`` and whose evaluator checks the answer. Shown: the
  experiment's duration (as reported: loading, every unit, every reporter)
  and the whole command's (with start-up: importing evalwire and, for
  ``dask`` without an address, starting a local cluster of two
  single-threaded worker processes).
* executor only: the same units through ``ThreadsExecutor.execute`` and
  ``DaskExecutor.execute`` in this process (cluster already up), no
  evaluator, no reporter: what the executor itself costs.

The ideal for 10,000 × 10 ms at 50 in flight is 2.0 s on one event loop; the
dask executor runs 50 in flight per worker thread, so two workers could
halve that. Numbers depend on the machine's cores and load: the load average
is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TASK = """\
import asyncio


async def task(input):
    await asyncio.sleep({seconds!r})
    return input["q"]
"""

CORRECT = """\
def correct(output, expected):
    return output == expected["a"]
"""


def write_project(root: Path, examples: int, seconds: float, task_concurrency: int) -> Path:
    folder = root / "experiments" / "sleepy"
    folder.mkdir(parents=True)
    (folder / "task.py").write_text(TASK.format(seconds=seconds), encoding="utf-8")
    (folder / "correct.py").write_text(CORRECT, encoding="utf-8")
    with (folder / "dataset.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(examples):
            fh.write(f'{{"id":"ex{i}","input":{{"q":{i}}},"expected":{{"a":{i}}}}}\n')
    (root / "evalwire.toml").write_text(
        f"task_concurrency = {task_concurrency}\nretries = 0\n", encoding="utf-8"
    )
    return root


def run_once(project: Path, args: list[str]) -> tuple[float, float, dict[str, Any]]:
    """(experiment seconds, command seconds, the experiment's --json entry)."""
    out = project / "results.json"
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "evalwire", "run", "-q", "--json", str(out), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"evalwire {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    [experiment] = json.loads(out.read_text(encoding="utf-8"))["experiments"]
    return experiment["duration"], wall, experiment


async def sleepy(example: Any) -> Any:
    await asyncio.sleep(SECONDS)
    return example.input["q"]


SECONDS = 0.01


def executor_only(options: argparse.Namespace) -> list[tuple[str, float]]:
    """Median seconds per executor for every unit through ``execute``, no session."""
    from evalwire.builtin._loops import ThreadsExecutor
    from evalwire.executor import iter_units
    from evalwire.models import Example
    from evalwire.unit import Policy, Work

    from evalwire_dask.executor import DaskExecutor

    global SECONDS
    SECONDS = options.seconds
    examples = [Example(f"ex{i}", {"q": i}) for i in range(options.examples)]
    work = Work("sleepy", sleepy, (), Policy(retries=0), options.task_concurrency)
    executors: list[tuple[str, Any]] = [
        ("threads", ThreadsExecutor(threads=max(options.task_concurrency, 4))),
        ("dask (local cluster, 2 workers x 1 thread)", DaskExecutor.start()),
    ]
    if options.dask_address:
        remote = DaskExecutor.start(options.dask_address)
        executors.append((f"dask ({options.dask_address})", remote))
    rows = []
    for label, executor in executors:
        try:
            list(executor.execute(work, iter_units(examples[:200], 1)))  # warm up
            times = []
            for _ in range(options.repeat):
                started = time.perf_counter()
                count = sum(1 for _ in executor.execute(work, iter_units(examples, 1)))
                times.append(time.perf_counter() - started)
                assert count == options.examples
        finally:
            executor.close()
        median = statistics.median(times)
        rows.append((label, median))
        print(
            f"  {label}: {median:.2f} s ({options.examples / median:,.0f} units/s); runs: "
            + ", ".join(f"{t:.2f}" for t in times),
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=0.01, help="each task's sleep")
    parser.add_argument("--task-concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dask-address", help="also run on this existing cluster")
    options = parser.parse_args()

    variants: list[tuple[str, list[str]]] = [
        ("threads", ["--executor", "threads"]),
        ("dask (local cluster, 2 workers x 1 thread)", ["--executor", "dask"]),
    ]
    if options.dask_address:
        variants.append(
            (
                f"dask ({options.dask_address})",
                ["--executor", "dask", "--dask-address", options.dask_address],
            )
        )

    ideal = options.examples * options.seconds / options.task_concurrency
    print(
        f"{options.examples} examples x {options.seconds * 1000:g} ms async sleep, "
        f"task_concurrency {options.task_concurrency}, median of {options.repeat}; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"ideal on one loop {ideal:.2f} s"
    )
    print("command line (evalwire run):")
    rows = []
    with tempfile.TemporaryDirectory(prefix="evalwire-dask-bench-") as scratch:
        project = write_project(
            Path(scratch), options.examples, options.seconds, options.task_concurrency
        )
        for label, args in variants:
            durations, walls = [], []
            for _ in range(options.repeat):
                duration, wall, experiment = run_once(project, args)
                assert experiment["completed"] == options.examples, experiment
                assert experiment["scores"]["correct"]["mean"] == 1.0, experiment
                durations.append(duration)
                walls.append(wall)
            duration, wall = statistics.median(durations), statistics.median(walls)
            rows.append((label, duration, options.examples / duration, wall))
            print(
                f"  {label}: {duration:.2f} s ({options.examples / duration:,.0f} units/s), "
                f"command {wall:.2f} s; runs: " + ", ".join(f"{d:.2f}" for d in durations),
                flush=True,
            )

    print("executor only (execute(), in this process):")
    bare = dict(executor_only(options))

    print()
    print("| executor | `evalwire run`: experiment | units/s | whole command | executor only |")
    print("|---|---:|---:|---:|---:|")
    for label, duration, rate, wall in rows:
        print(f"| {label} | {duration:.2f} s | {rate:,.0f} | {wall:.2f} s | {bare[label]:.2f} s |")


if __name__ == "__main__":
    main()
