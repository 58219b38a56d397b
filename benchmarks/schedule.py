"""Schedule efficiency: do ``task_concurrency`` slow tasks really overlap?

``examples`` examples, a task that sleeps ``sleep`` seconds, ``concurrency``
units in flight, one evaluator, the store on. The ideal wall time is
``ceil(examples / concurrency) * sleep`` (2000 / 100 * 0.05 = 1.0 s); the
target is at most 1.15 x that, for an async task and for a sync one (run in the
threads executor's pool).

Peers, measured in the same run on a Phoenix-shaped in-memory dataset:
Phoenix's ``async_run_experiment(concurrency=..., dry_run=examples)`` with no
evaluators (no server needed for a dry run), and Phoenix's sync
``run_experiment`` (one example at a time, as upstream evalwire 0.6 runs) on a
``sync_slice``-example slice, extrapolated linearly to ``examples``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import time
from typing import Any

from benchmarks.common import (
    PYTHON,
    REPO,
    Project,
    async_sleep_task,
    child_env,
    evalwire_env,
    median,
    result,
    row,
    run_experiments,
    scenario,
    store_setup,
    sync_sleep_task,
    timed,
)

NAME = "schedule"
TARGET = 1.15


@scenario
def run(
    *,
    examples: int = 2000,
    concurrency: int = 100,
    sleep: float = 0.05,
    runs: int = 3,
    sync_slice: int = 200,
    peers: bool = True,
    store_mode: str | None = None,
) -> dict[str, Any]:
    from evalwire import ExperimentRunner

    store = store_setup(store_mode)
    ideal = math.ceil(examples / concurrency) * sleep
    bound = TARGET * ideal
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    notes = [
        f"{store.label}; console off; ideal = ceil({examples}/{concurrency}) x {sleep} s "
        f"= {ideal:.3f} s"
    ]
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}

    with Project(NAME) as project:
        project.add("sched_async", async_sleep_task(sleep), examples)
        project.add("sched_sync", sync_sleep_task(sleep), examples)
        for kind in ("async", "sync"):
            name = f"sched_{kind}"
            walls[kind], cpus[kind] = [], []
            for _ in range(runs):
                project.reset_store()
                runner = ExperimentRunner(
                    project.experiments,
                    task_concurrency=concurrency,
                    plugin_args=("no:console", *store.args(on=True)),
                )
                cpu0 = time.process_time()
                wall, results = timed(functools.partial(run_experiments, runner, [name]))
                cpus[kind].append(time.process_time() - cpu0)
                walls[kind].append(wall)
                (res,) = results
                checks[kind] = {
                    "completed": res.completed,
                    "task_errors": res.task_errors,
                    "mean_correct": res.mean("correct"),
                    "status": res.status,
                }
            checks[f"{kind}_store_rows"] = _stored_runs(project, store.available)

    peer: dict[str, Any] = {}
    if peers:
        peer = _phoenix_peers(examples, concurrency, sleep, runs, min(sync_slice, examples))
        checks["phoenix"] = peer.get("checks", {})
        if "error" in peer:
            notes.append(f"Phoenix peers not measured: {peer['error']}")
        else:
            notes.append(
                f"Phoenix peers ran in a child process (importing phoenix.client "
                f"took {peer['import_s']:.1f} s there, not timed)"
            )

    for kind in ("async", "sync"):
        wall = median(walls[kind])
        peer_text, ratio, extra = "", None, ""
        if kind == "async" and "async_wall" in peer:
            peer_text = f"phoenix async {peer['async_wall']:.3f} s"
            ratio = wall / peer["async_wall"]
        if kind == "sync" and "sync_wall" in peer:
            peer_text = f"phoenix sync {peer['sync_extrapolated']:.1f} s (extrapolated)"
            ratio = wall / peer["sync_extrapolated"]
        rows.append(
            row(
                f"{kind} task: evalwire wall, {examples} ex @ {concurrency}",
                wall,
                "s",
                target=f"<= {bound:.3f} s",
                ok=wall <= bound,
                peer=peer_text,
                ratio=ratio,
                extrapolated=extra,
                runs=walls[kind],
                note=f"CPU {median(cpus[kind]):.3f} s (all threads)",
            )
        )
        rows.append(
            row(
                f"{kind} task: evalwire wall / ideal",
                wall / ideal,
                "x",
                target=f"<= {TARGET:.2f} x",
                ok=wall / ideal <= TARGET,
            )
        )
    if "async_wall" in peer:
        rows.append(
            row(
                f"phoenix async_run_experiment, {examples} ex @ {concurrency}, no evaluator",
                peer["async_wall"],
                "s",
                runs=peer["async_runs"],
                note=f"{peer['async_wall'] / ideal:.2f} x ideal",
            )
        )
    if "sync_wall" in peer:
        per_example = peer["sync_wall"] / peer["slice"] - sleep
        rows.append(
            row(
                f"phoenix sync run_experiment, {peer['slice']}-ex slice, no evaluator",
                peer["sync_wall"],
                "s",
                runs=peer["sync_runs"],
                extrapolated=f"{peer['sync_extrapolated']:.1f} s for {examples} ex (linear)",
            )
        )
        rows.append(
            row(
                "phoenix sync run_experiment: overhead per example (beyond the sleep)",
                per_example * 1e3,
                "ms",
            )
        )
    return result(
        NAME,
        "Schedule efficiency",
        {
            "examples": examples,
            "concurrency": concurrency,
            "sleep": sleep,
            "runs": runs,
            "sync_slice": sync_slice,
            "store": store.mode,
            "ideal": ideal,
        },
        rows,
        checks,
        notes,
    )


def _stored_runs(project: Project, available: bool) -> int | None:
    """Runs the store recorded in the last timed run (``None`` without a store)."""
    path = project.store_file()
    if not available or not path.exists():
        return None
    import sqlite3

    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])


def _phoenix_peers(
    examples: int, concurrency: int, sleep: float, runs: int, sync_slice: int
) -> dict[str, Any]:
    """Phoenix's runners on the same work, in a child process (see ``phoenix_peers``)."""
    cmd = [
        PYTHON,
        "-m",
        "benchmarks.phoenix_peers",
        "--examples",
        str(examples),
        "--concurrency",
        str(concurrency),
        "--sleep",
        repr(sleep),
        "--runs",
        str(runs),
        "--sync-slice",
        str(sync_slice),
    ]
    done = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, text=True)
    if done.returncode != 0:
        return {
            "error": f"peer process exited {done.returncode}: "
            f"{done.stderr.strip().splitlines()[-1:] or ''}"
        }
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in out:
        return out
    out["async_wall"] = median(out["async_runs"])
    out["sync_wall"] = median(out["sync_runs"])
    out["sync_extrapolated"] = out["sync_wall"] * examples / sync_slice
    return out


def compare(
    variants: list[str],
    *,
    kind: str = "sync",
    rounds: int = 8,
    examples: int = 2000,
    concurrency: int = 100,
    sleep: float = 0.05,
) -> dict[str, list[dict[str, float]]]:
    """The schedule run under each patch set in turn, ``rounds`` times, interleaved run by run.

    A variant is ``+``-joined names from :mod:`benchmarks.patches` (``base``: none), so
    a busy spell on a shared machine hits every variant alike. Prints each run
    (wall, CPU of all threads, 1-minute load average) and the medians.
    """
    from benchmarks.patches import applied
    from evalwire import ExperimentRunner

    ideal = math.ceil(examples / concurrency) * sleep
    source = sync_sleep_task(sleep) if kind == "sync" else async_sleep_task(sleep)
    measured: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with evalwire_env(), Project(NAME) as project:
        store = store_setup(None)
        project.add("sched", source, examples)
        for round_ in range(1, rounds + 1):
            for variant in variants:
                with applied([] if variant == "base" else variant.split("+")):
                    project.reset_store()
                    runner = ExperimentRunner(
                        project.experiments,
                        task_concurrency=concurrency,
                        plugin_args=("no:console", *store.args(on=True)),
                    )
                    load = os.getloadavg()[0]
                    cpu0 = time.process_time()
                    wall, (res,) = timed(functools.partial(run_experiments, runner, ["sched"]))
                    cpu = time.process_time() - cpu0
                if res.completed != examples or res.mean("correct") != 1.0:
                    raise SystemExit(f"{variant}: {res.completed} runs, status {res.status}")
                measured[variant].append({"wall": wall, "cpu": cpu, "load": load})
                print(
                    f"round {round_} {variant:40s} wall {wall:.3f} s ({wall / ideal:.2f} x) "
                    f"CPU {cpu:.3f} s load {load:.2f}",
                    flush=True,
                )
    print(f"medians of {rounds}, {kind} task, {examples} ex @ {concurrency}:")
    for variant, runs in measured.items():
        walls = sorted(r["wall"] for r in runs)
        print(
            f"  {variant:40s} wall {median(walls):.3f} s ({median(walls) / ideal:.2f} x; "
            f"{walls[0]:.3f}-{walls[-1]:.3f}) CPU {median([r['cpu'] for r in runs]):.3f} s "
            f"load {min(r['load'] for r in runs):.1f}-{max(r['load'] for r in runs):.1f}"
        )
    return measured


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.schedule",
        description="Compare patch sets on the schedule scenario, interleaved run by run.",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        required=True,
        metavar="VARIANT",
        help="'base' or '+'-joined patch names (benchmarks/patches.py)",
    )
    parser.add_argument("--kind", choices=("sync", "async"), default="sync")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--examples", type=int, default=2000)
    args = parser.parse_args()
    compare(args.compare, kind=args.kind, rounds=args.rounds, examples=args.examples)
