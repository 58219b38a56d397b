"""Overhead per example: how many examples a second evalwire itself can push through.

``examples`` examples in a JSONL file, a no-op task, one evaluator, the store
on, the console reporter in non-TTY mode (stdout is the null device). Run
through ``ExperimentRunner`` in this process, so interpreter start-up is
excluded (plugin loading, discovery and the summary are included). Target:
at least 10,000 examples/s end to end. Measured for an async no-op task (the
framework alone) and a sync one (adds the thread-pool hop every sync task pays).

Then the async figure is taken apart, each piece measured in isolation on the
same data with the same plugins (see ``README.md``):

* session fixed cost: an end-to-end run of a one-example dataset;
* dataset read: ``load_dataset`` plus iterating every example;
* unit (task only): ``run_unit`` with no evaluator, in a bare event loop;
* evaluation: ``run_unit`` with the evaluator, less the above;
* dispatch: the threads executor running those units, less the above;
* hook calls: ``record`` plus ``run_complete`` for every run, store off;
* store writes: the same with the store on, less the above, plus the time the
  store needs at session end to commit what is still queued;

and one run is profiled (every thread, CPU time) to attribute it by function.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.common import (
    ASYNC_NOOP,
    SYNC_NOOP,
    Project,
    Store,
    median,
    quiet,
    result,
    row,
    run_experiments,
    scenario,
    store_setup,
    timed,
)

NAME = "overhead"
TARGET = 10_000  # examples per second, end to end
PROFILE_EXAMPLES = 20_000  # enough for stable shares; the profiler multiplies run time


@scenario
def run(
    *,
    examples: int = 100_000,
    runs: int = 3,
    breakdown: bool = True,
    profile: bool = True,
    sync: bool = True,
    store_mode: str | None = None,
) -> dict[str, Any]:
    store = store_setup(store_mode)
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    notes = [f"{store.label}; console on, stdout not a TTY; no-op task + 1 sync evaluator"]
    extra: dict[str, Any] = {}

    with Project(NAME) as project:
        project.add("noop_async", ASYNC_NOOP, examples)
        if sync:
            project.add("noop_sync", SYNC_NOOP, examples)
        project.add("one_async", ASYNC_NOOP, 1)

        variants = [("noop_async", True), ("noop_async", False)]
        if sync:
            variants.append(("noop_sync", True))
        e2e: dict[tuple[str, bool], float] = {}
        for name, store_on in variants:
            if store_on is False and not store.available:
                continue
            walls, seen, cpus = [], [], []
            for _ in range(runs):
                wall, res, pool_used, cpu = _end_to_end(project, name, store, store_on)
                walls.append(wall)
                seen.append(pool_used)
                cpus.append(cpu)
                checks[f"{name}{'' if store_on else '_no_store'}"] = _check(res)
            wall = median(walls)
            e2e[(name, store_on)] = wall
            rate = examples / wall
            kind = "async" if name.endswith("async") else "sync"
            label = "store on" if store_on and store.available else "store off"
            target = store_on or not store.available
            rows.append(
                row(
                    f"{kind} no-op: end to end, {examples:,} ex, {label}",
                    rate,
                    "ex/s",
                    target=f">= {TARGET:,} ex/s" if target else "",
                    ok=(rate >= TARGET) if target else None,
                    runs=[examples / w for w in walls],
                    note=f"wall {wall:.2f} s; CPU {1e6 * median(cpus) / examples:.1f} µs/ex "
                    "(all threads)",
                )
            )
            if kind == "async" and any(seen):
                notes.append(
                    f"{kind} no-op ({label}): in {sum(seen)} of {runs} runs the sync evaluator "
                    "was moved to the thread pool (one call over 5 ms, e.g. a GC pause)"
                )

        if breakdown:
            parts = _breakdown(project, store, examples, runs)
            extra["breakdown"] = parts
            total_e2e = e2e.get(("noop_async", True), float("nan"))
            rows.extend(_breakdown_rows(parts, examples, total_e2e))
            checks["breakdown"] = parts["checks"]
        if profile:
            size = min(examples, PROFILE_EXAMPLES)
            with Project(f"{NAME}-profile") as small:
                small.add("noop_async", ASYNC_NOOP, size)
                prof = profile_run(small, store, size)
            extra["profile"] = prof
            checks["profile"] = prof["check"]
            for bucket in prof["buckets"]:
                rows.append(
                    row(
                        f"profile: {bucket['bucket']}",
                        bucket["us_per_example"],
                        "µs",
                        note=f"{bucket['share']:.1f} % of CPU",
                    )
                )
            notes.append(
                f"profile: one async run of {size:,} examples, CPU time per thread "
                "(cProfile, thread_time), attributed by function; profiler overhead inflates "
                "absolute numbers, shares are what to read"
            )
    return result(
        NAME,
        "Overhead per example",
        {"examples": examples, "runs": runs, "store": store.mode},
        rows,
        checks,
        notes,
        **extra,
    )


# -- end to end -----------------------------------------------------------------


def _end_to_end(
    project: Project, name: str, store: Store, store_on: bool
) -> tuple[float, Any, bool, float]:
    """Wall time, the result, whether the task pool ran, and this process's CPU time."""
    from evalwire import ExperimentRunner

    project.reset_store()
    runner = ExperimentRunner(project.experiments, plugin_args=store.args(on=store_on))
    gc.collect()
    with _threads_started() as started, quiet():
        cpu0 = time.process_time()
        wall, results = timed(lambda: run_experiments(runner, [name]))
        cpu = time.process_time() - cpu0
    pool_used = any(n.startswith("evalwire-task") for n in started)
    return wall, results[0], pool_used, cpu


def _check(res: Any) -> dict[str, Any]:
    return {
        "completed": res.completed,
        "total": res.total,
        "task_errors": res.task_errors,
        "mean_correct": res.mean("correct"),
        "status": res.status,
    }


@contextmanager
def _threads_started() -> Iterator[list[str]]:
    """Names of threads started inside the block (to see whether the pool was used)."""
    names: list[str] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        names.append(self.name)
        original(self)

    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        yield names
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]


# -- the breakdown ----------------------------------------------------------------


class _Rig:
    """A session set up by hand, stage by stage, as :class:`evalwire.session.Session` does."""

    def __init__(self, project: Project, store: Store, store_on: bool, name: str) -> None:
        from evalwire.config import build_config
        from evalwire.plugins import Plugins
        from evalwire.session import Experiment, Session

        self.config = build_config({"experiments_dir": str(project.experiments), "names": (name,)})
        self.plugins = Plugins.load(store.args(on=store_on))
        self.session = Session(self.config, self.plugins)
        self.plugins.configure(self.config)
        (self.spec,) = [s for s in self.plugins.discover(self.config) if s.name == name]
        self.session.specs = [self.spec]
        self.session.started_at = time.time()
        self.Experiment = Experiment

    def start(self) -> Any:
        self.plugins.session_start(self.session)
        experiment = self.Experiment(self.spec, self.config, self.session._new_result(self.spec))
        return experiment

    def prepare(self, experiment: Any) -> tuple[Any, Any]:
        return self.session._prepare(experiment)


def _breakdown(project: Project, store: Store, examples: int, runs: int) -> dict[str, Any]:
    from evalwire.executor import iter_units
    from evalwire.unit import AdaptiveLimiter, Work, run_unit

    out: dict[str, Any] = {"checks": {}}
    name = "noop_async"

    # Session fixed cost: a whole run of a one-example dataset.
    fixed = [_end_to_end(project, "one_async", store, True)[0] for _ in range(max(runs, 3))]
    out["session_fixed_s"] = median(fixed)

    # Dataset read: locate + scan (count, version) + iterate every example.
    rig = _Rig(project, store, False, name)
    reads = []
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        dataset = rig.plugins.load_dataset(rig.spec, rig.config)
        assert dataset is not None, "the files loader found no dataset"
        count = sum(1 for _example in dataset)
        reads.append(time.perf_counter() - t0)
    out["dataset_read_s"] = median(reads)
    out["checks"]["dataset_examples"] = count

    with quiet():
        experiment = rig.start()
        work, _ = rig.prepare(experiment)
    preloaded = list(dataset)  # type: ignore[arg-type]  # set in the loop above
    task_only = Work(work.name, work.task, (), work.policy, work.concurrency)

    async def units(w: Work, sink: list[Any] | None) -> None:
        # As the executor's workers do, give the loop a turn every window's worth
        # of units (so cancelled timeout handles are cleaned up as they are there).
        limiter = AdaptiveLimiter(w.concurrency)
        for unit in iter_units(preloaded, 1):
            r = await run_unit(w, unit, limiter)
            if sink is not None:
                sink.append(r)
            if unit.index % 1024 == 1023:
                await asyncio.sleep(0)

    def time_units(w: Work, keep: bool) -> tuple[float, list[Any], bool]:
        evaluators = [e for _, e in w.evaluators]
        for e in evaluators:
            if hasattr(e, "offload"):
                e.offload = False  # each run starts as a fresh session would
        sink: list[Any] | None = [] if keep else None
        gc.collect()
        wall, _ = timed(lambda: asyncio.run(units(w, sink)))
        offloaded = any(getattr(e, "offload", False) for e in evaluators)
        return wall, sink or [], offloaded

    out["unit_task_only_s"] = median([time_units(task_only, False)[0] for _ in range(runs)])
    with_eval = [time_units(work, True) for _ in range(runs)]
    out["unit_with_evaluator_s"] = median([w for w, _, _ in with_eval])
    out["evaluator_offloaded_runs"] = sum(1 for _, _, o in with_eval if o)
    runs_made = with_eval[-1][1]
    out["checks"]["units"] = len(runs_made)
    out["checks"]["scores"] = sum(r.evaluations[0].score for r in runs_made)

    # Dispatch: the threads executor running the same units over the same examples.
    def execute() -> int:
        executor = rig.plugins.make_executor(rig.config)
        assert executor is not None, "no executor plugin answered"
        try:
            return sum(1 for _run in executor.execute(work, iter_units(preloaded, 1)))
        finally:
            executor.close()

    dispatches = []
    for _ in range(runs):
        for _, e in work.evaluators:
            if hasattr(e, "offload"):
                e.offload = False
        gc.collect()
        wall, count = timed(execute)
        dispatches.append(wall)
    out["executor_s"] = median(dispatches)
    out["checks"]["executor_runs"] = count

    # Hook calls (store off) and store writes (store on, less the hooks).
    hooks_off = [_hooks(project, store, False, name, runs_made) for _ in range(runs)]
    out["hooks_loop_s"] = median([h[0] for h in hooks_off])
    out["hooks_finish_s"] = median([h[1] for h in hooks_off])
    if store.available:
        hooks_on = [_hooks(project, store, True, name, runs_made) for _ in range(runs)]
        out["store_loop_s"] = median([h[0] for h in hooks_on])
        out["store_finish_s"] = median([h[1] for h in hooks_on])
        out["checks"]["stored_runs"] = hooks_on[-1][2]
    return out


def _hooks(
    project: Project, store: Store, store_on: bool, name: str, runs_made: list[Any]
) -> tuple[float, float, int | None]:
    """Seconds for record + run_complete over every run, and for the session's end."""
    project.reset_store()
    rig = _Rig(project, store, store_on, name)
    plugins = rig.plugins
    gc.collect()
    with quiet():
        experiment = rig.start()
        plugins.experiment_start(experiment)
        result_ = experiment.result
        record, run_complete = result_.record, plugins.run_complete
        t0 = time.perf_counter()
        for r in runs_made:
            record(r)
            run_complete(experiment, r)
        t1 = time.perf_counter()
        rig.session._finish(experiment)
        plugins.session_finish(rig.session, [result_], 0)
        t2 = time.perf_counter()
    stored = None
    if store_on and project.store_file().exists():
        import sqlite3

        with sqlite3.connect(project.store_file()) as conn:
            stored = int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    return t1 - t0, t2 - t1, stored


def _breakdown_rows(parts: dict[str, Any], examples: int, e2e: float) -> list[dict[str, Any]]:
    us = 1e6 / examples
    pieces: list[tuple[str, float]] = [
        ("dataset read (scan + parse + Example)", parts["dataset_read_s"]),
        ("unit: task call + policy + timeout + Run", parts["unit_task_only_s"]),
        (
            "evaluation (1 sync evaluator)",
            parts["unit_with_evaluator_s"] - parts["unit_task_only_s"],
        ),
        (
            "dispatch (threads executor, hand-over)",
            parts["executor_s"] - parts["unit_with_evaluator_s"],
        ),
        ("hook calls + record (console, json)", parts["hooks_loop_s"]),
    ]
    if "store_loop_s" in parts:
        pieces.append(
            (
                "store writes (queue + writer + final commit)",
                parts["store_loop_s"]
                - parts["hooks_loop_s"]
                + parts["store_finish_s"]
                - parts["hooks_finish_s"],
            )
        )
    rows = [
        row(f"breakdown: {label}", seconds * us, "µs", note=f"{seconds:.3f} s")
        for label, seconds in pieces
    ]
    rows.append(
        row("breakdown: session fixed cost (1-example run)", parts["session_fixed_s"] * 1e3, "ms")
    )
    total = sum(s for _, s in pieces) + parts["session_fixed_s"]
    rows.append(
        row(
            "breakdown: sum of pieces vs end to end (async, store on)",
            total * us,
            "µs",
            note=f"end to end {e2e * us:.1f} µs/ex; pieces in series, threads overlap "
            "in the real run",
        )
    )
    if parts.get("evaluator_offloaded_runs"):
        rows[2]["note"] += f"; offloaded to the pool in {parts['evaluator_offloaded_runs']} run(s)"
    return rows


# -- the profile --------------------------------------------------------------------

# (bucket, file suffixes, function name): cumulative CPU time of these functions
# (benchmarks/patches.py holds the prototypes that replace some of them).
_PATCHED = "benchmarks/patches.py"
_BUCKETS = (
    ("dataset read", ("builtin/_rows.py",), "__iter__"),
    ("task call (adapter + no-op task)", ("builtin/callables.py",), "run_async"),
    ("evaluation (adapter, evaluator, normalize)", ("evalwire/unit.py", _PATCHED), "_evaluate"),
    ("unit bookkeeping (policy, timeout, Run)", ("evalwire/unit.py",), "run_unit"),
    ("hook calls (run_complete, all plugins)", ("evalwire/plugins.py",), "run_complete"),
    ("record (ExperimentResult aggregates)", ("evalwire/models.py",), "record"),
    ("store writer thread (encode + SQLite)", ("store/records.py",), "_serve"),
)


def profile_run(project: Project, store: Store, examples: int) -> dict[str, Any]:
    """Profile every thread of one end-to-end run in CPU time; attribute it to buckets."""
    from evalwire import ExperimentRunner

    profiles: list[tuple[str, cProfile.Profile]] = []
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        try:
            original_run(self)
        finally:
            profiler.disable()
            profiles.append((self.name, profiler))

    project.reset_store()
    runner = ExperimentRunner(project.experiments, plugin_args=store.args(on=True))
    main_profiler = cProfile.Profile(time.thread_time)
    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    try:
        with quiet():
            main_profiler.enable()
            wall, results = timed(lambda: run_experiments(runner, ["noop_async"]))
            main_profiler.disable()
    finally:
        threading.Thread.run = original_run  # type: ignore[method-assign]
    profiles.append(("MainThread", main_profiler))

    stats = pstats.Stats(main_profiler)
    per_thread: dict[str, float] = {}
    for thread_name, profiler in profiles:
        if profiler is not main_profiler:
            stats.add(profiler)
        thread_stats = pstats.Stats(profiler)
        key = thread_name.rstrip("0123456789_").rstrip("-") or thread_name
        per_thread[key] = per_thread.get(key, 0.0) + thread_stats.total_tt  # type: ignore[attr-defined]

    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    cumulative: dict[str, float] = {}
    for bucket, suffixes, func in _BUCKETS:
        cumulative[bucket] = sum(
            ct
            for (path, _, fn), (_, _, _, ct, _) in table.items()
            if fn == func and path.replace("\\", "/").endswith(suffixes)
        )
    total = sum(per_thread.values())
    # run_unit's time includes the task and evaluation: keep only its own bookkeeping.
    cumulative["unit bookkeeping (policy, timeout, Run)"] -= (
        cumulative["task call (adapter + no-op task)"]
        + cumulative["evaluation (adapter, evaluator, normalize)"]
    )
    attributed = sum(cumulative.values())
    cumulative["everything else (event loop, executor, hand-over, session)"] = total - attributed
    buckets = [
        {
            "bucket": b,
            "cpu_s": s,
            "share": 100 * s / total if total else 0.0,
            "us_per_example": 1e6 * s / examples,
        }
        for b, s in cumulative.items()
    ]
    top = sorted(
        (
            (ct, tt, nc, f"{path.rsplit('/', 2)[-1] if '/' in path else path}:{line}({fn})")
            for (path, line, fn), (_, nc, tt, ct, _) in table.items()
        ),
        key=lambda t: -t[1],
    )[:15]
    return {
        "examples": examples,
        "wall_s": wall,
        "total_cpu_s": total,
        "cpu_by_thread_s": per_thread,
        "buckets": buckets,
        "top_by_own_time": [
            {"function": name, "own_s": tt, "cumulative_s": ct, "calls": nc}
            for ct, tt, nc, name in top
        ],
        "check": _check(results[0]),
    }
