"""One session: discover → load → adapt → execute → report, for every experiment.

Data flows one way. The session asks the plugins for each stage's answer and
hands it to the next; it never knows which plugin did the work.
"""

from __future__ import annotations

import gc
import heapq
import random
import sys
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from evalwire.config import Config
from evalwire.errors import AdaptError, DatasetError, EvalwireError, UsageError
from evalwire.executor import Executor, Unit, iter_units
from evalwire.models import Dataset, Example, ExperimentResult, ExperimentSpec, Resume
from evalwire.named_evaluators import with_named_evaluators
from evalwire.plugins import Plugins
from evalwire.sweeps import SweepSettings, SweepSummary, expand, settings_for, summarize
from evalwire.unit import Policy, Work


@dataclass
class Experiment:
    """An experiment as it runs: what reporters are told about.

    ``dataset`` is ``None`` when it could not be loaded; ``result`` fills in
    as runs complete; ``stash`` is for plugins' per-experiment state.
    """

    spec: ExperimentSpec
    config: Config
    result: ExperimentResult
    dataset: Dataset | None = None
    stash: dict[str, Any] = field(default_factory=dict)
    resumed: Resume | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def id(self) -> str:
        return self.result.id


class Session:
    """Runs every selected experiment once, ``config.concurrency`` at a time."""

    def __init__(self, config: Config, plugins: Plugins) -> None:
        self.config = config
        self.plugins = plugins
        config.plugins = plugins
        self.specs: list[ExperimentSpec] = []
        self.results: list[ExperimentResult] = []
        self.exitstatus = 0
        self.started_at = 0.0
        self.sweeps: dict[str, SweepSettings] = {}
        self.sweep_summaries: list[SweepSummary] = []

    # -- the flow --------------------------------------------------------------

    def run(self) -> list[ExperimentResult]:
        """Run the session; ``exitstatus`` says how it went (0, 1)."""
        config, plugins = self.config, self.plugins
        plugins.configure(config)
        specs = self._with_named_evaluators(self._select(plugins.discover(config)))
        self.specs = self._expand_sweeps(specs)
        executor = plugins.make_executor(config)
        if executor is None:
            raise UsageError(
                f"no executor named '{config.executor}' is installed "
                "(see `evalwire plugins`); the default is 'threads'"
            )
        self.started_at = time.time()
        plugins.session_start(self)
        # Runs are many small objects that live briefly: collect young ones less often.
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], 10_000), *thresholds[1:])
        try:
            workers = max(1, min(config.concurrency, len(self.specs)))
            with ThreadPoolExecutor(workers, thread_name_prefix="evalwire-exp") as pool:
                self.results = list(pool.map(lambda s: self._run_one(s, executor), self.specs))
        finally:
            gc.set_threshold(*thresholds)
            executor.close()
        self.sweep_summaries = summarize(self.results, self.sweeps)
        status = 1 if any(r.failed for r in self.results) else 0
        self.exitstatus = plugins.session_finish(self, self.results, status)
        return self.results

    def _select(self, specs: list[ExperimentSpec]) -> list[ExperimentSpec]:
        names = self.config.names
        if names:
            known = {s.name for s in specs}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise UsageError(
                    f"no experiment named {', '.join(repr(n) for n in unknown)} in "
                    f"{self.config.experiments_dir}; found: {', '.join(sorted(known)) or 'none'}"
                )
            specs = [s for s in specs if s.name in names]
        if not specs:
            raise UsageError(
                f"no experiments found in {self.config.experiments_dir}: "
                "each experiment is a folder holding task.py"
            )
        return specs

    def _expand_sweeps(self, specs: list[ExperimentSpec]) -> list[ExperimentSpec]:
        config = self.config
        expanded: list[ExperimentSpec] = []
        for spec in specs:
            table = config.experiment_settings(spec.family)
            sweep = settings_for(
                table,
                matrix=config.matrix,
                repeats=config.repeats,
                seed=None if "seed" in table else config.seed,
                select=config.select,
                mode=config.select_mode,
            )
            if sweep.active:
                self.sweeps[spec.family] = sweep
            expanded.extend(expand(spec, sweep, config.arm_filter))
        if not expanded:
            raise UsageError(f"no arm matches --arm {config.arm_filter}")
        return expanded

    def _with_named_evaluators(self, specs: list[ExperimentSpec]) -> list[ExperimentSpec]:
        if not any("evaluators" in self.config.experiment_settings(s.family) for s in specs):
            return specs
        factories = self.plugins.evaluator_factories()
        return [
            with_named_evaluators(s, self.config.experiment_settings(s.family), factories)
            for s in specs
        ]

    def _run_one(self, spec: ExperimentSpec, executor: Executor) -> ExperimentResult:
        config, plugins = self.config, self.plugins
        result = self._new_result(spec)
        experiment = Experiment(spec, config, result)
        try:
            work, examples = self._prepare(experiment)
        except EvalwireError as exc:
            result.status, result.error = "error", str(exc)
            plugins.experiment_start(experiment)
            return self._finish(experiment)
        units: Iterable[Unit] = iter_units(examples, config.repetitions)
        resume = plugins.resume(experiment, config) if config.resume else None
        if resume is not None:
            units = self._continue(experiment, resume, units)
        plugins.experiment_start(experiment)
        try:
            tracer = plugins.make_tracer(experiment)
        except Exception as exc:  # spans are a courtesy: a broken tracer costs them, not runs
            tracer = None
            sys.stderr.write(
                f"evalwire: {spec.name}: no spans: a plugin's evalwire_make_tracer raised "
                f"{type(exc).__name__}: {exc}\n"
            )
        if tracer is not None:
            work = replace(work, tracer=tracer)
        keep = config.keep_runs
        runs = result.runs
        record = result.record
        run_complete = plugins.run_complete
        try:
            for run in executor.execute(work, units):
                record(run)
                if keep:
                    runs.append(run)
                run_complete(experiment, run)
        except DatasetError as exc:
            result.status, result.error = "error", str(exc)
        except Exception as exc:  # a bug in a plugin: keep what finished, say what broke
            result.status = "error"
            result.error = f"{type(exc).__name__}: {exc}"
            result.extra["traceback"] = traceback.format_exc()
        return self._finish(experiment)

    def _continue(
        self, experiment: Experiment, resume: Resume, units: Iterable[Unit]
    ) -> Iterator[Unit]:
        """Adopt a resumed record: count what it holds, run only what it lacks."""
        result = experiment.result
        experiment.resumed = resume
        result.id = resume.experiment_id
        if resume.started_at is not None:
            result.started_at = resume.started_at
        for run in resume.previous:
            result.record(run)
            if self.config.keep_runs:
                result.runs.append(run)
        done = resume.done
        return (u for u in units if (u.example.id, u.repetition) not in done)

    def _new_result(self, spec: ExperimentSpec) -> ExperimentResult:
        config = self.config
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return ExperimentResult(
            id=uuid.uuid4().hex,
            name=spec.name,
            experiment_name=spec.experiment_name or f"{config.prefix}_{spec.dataset_name}_{stamp}",
            dataset=spec.dataset_name,
            started_at=time.time(),
            params=dict(spec.params),
            metadata={**config.metadata, **spec.metadata},
            dry_run=config.dry_run_size is not None,
            base=spec.family,
            arm=dict(spec.arm),
            replicate=spec.replicate,
            group=spec.group,
        )

    def _prepare(self, experiment: Experiment) -> tuple[Work, Iterable[Example]]:
        spec, config, plugins = experiment.spec, self.config, self.plugins
        if spec.error is not None:
            raise AdaptError(spec.error)
        dataset = plugins.load_dataset(spec, config)
        if dataset is None:
            searched = plugins.describe_search(spec, config)
            raise DatasetError(
                f"dataset '{spec.dataset_name}' not found"
                + ("; " + "; ".join(searched) if searched else " (no loader knows it)")
            )
        experiment.dataset = dataset
        experiment.result.dataset_version = dataset.version
        task = plugins.adapt_task(spec.task, spec, config)
        if task is None:
            raise AdaptError(
                f"experiment '{spec.name}': no adapter handles a task of type "
                f"{type(spec.task).__name__}"
            )
        evaluators = []
        for name, evaluator in spec.evaluators.items():
            adapted = plugins.adapt_evaluator(evaluator, name, spec, config)
            if adapted is None:
                raise AdaptError(
                    f"experiment '{spec.name}': no adapter handles evaluator '{name}' "
                    f"of type {type(evaluator).__name__}"
                )
            evaluators.append((name, adapted))
        settings = config.experiment_settings(spec.family)
        timeout = settings.get("timeout", config.timeout)
        policy = Policy(
            timeout=timeout if timeout else None,  # 0 means no timeout, as at the top level
            retries=settings.get("retries", config.retries),
            backoff=config.backoff,
            rate_limit_errors=config.rate_limit_errors,
        )
        work = Work(
            name=spec.name,
            task=task,
            evaluators=tuple(evaluators),
            policy=policy,
            concurrency=settings.get("task_concurrency", config.task_concurrency),
        )
        sample = config.dry_run_size
        examples: Iterable[Example]
        if sample is not None:
            examples = _sample(dataset, sample, config.seed)
            experiment.result.total = len(examples) * config.repetitions  # type: ignore[arg-type]
        else:
            examples = dataset
            if dataset.size is not None or isinstance(dataset.examples, list | tuple):
                experiment.result.total = len(dataset) * config.repetitions
        return work, examples

    def _finish(self, experiment: Experiment) -> ExperimentResult:
        result = experiment.result
        result.ended_at = time.time()
        if result.status == "passed" and result.completed == 0:
            result.status = "error"
            result.error = f"dataset '{result.dataset}' has no examples"
        if result.status == "passed" and (result.task_errors or result.evaluation_errors):
            result.status = "failed"
        result.runs.sort(key=_run_order)
        self.plugins.experiment_finish(experiment, result)
        return result


def _run_order(run: Any) -> tuple[int, int]:
    return run.index, run.repetition


def _sample(examples: Iterable[Example], size: int, seed: int) -> list[Example]:
    """A seeded random sample of ``size`` examples, in dataset order, in one pass."""
    rng = random.Random(seed)
    # Reservoir sampling by random keys: keep the ``size`` smallest keys.
    keyed: Iterator[tuple[float, int, Example]] = (
        (rng.random(), i, ex) for i, ex in enumerate(examples)
    )
    chosen = heapq.nsmallest(size, keyed)
    return [ex for _, _, ex in sorted(chosen, key=lambda t: t[1])]


def run_session(config: Config, plugins: Plugins) -> tuple[list[ExperimentResult], int]:
    """Run a session and return its results and exit status."""
    session = Session(config, plugins)
    results = session.run()
    return results, session.exitstatus


__all__ = ["Experiment", "Session", "Unit", "run_session"]
