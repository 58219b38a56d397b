"""``evalwire rescore ID``: score a recorded experiment's outputs with today's evaluators.

The task is never called. A normal session runs with one in-process plugin,
:class:`Replay`, that discovers a single experiment: its dataset is the
record's examples (one per recorded run), its task hands back the output
recorded for that run (a recorded task error is raised again, with the same
message, so the run stays an error), and its evaluators are the ones the
experiment's folder holds now, discovered the normal way (plus any named in
``evalwire.toml``). Runs keep their example index and repetition, so the new
record compares one-to-one with the original (``evalwire compare ID NEW``).

The new record goes into the same store through the ordinary ``store``
plugin, under the original's name, with its params and metadata plus
``rescored_from: ID``; it records the original's task hash (its outputs came
from that task). ``--resume`` never continues a rescored record.

Retries are off (a recorded error would only be raised again) and the
``threads`` executor runs the evaluators in this process, whatever executor
the project configures. Outputs come back as the store holds them: JSON, or
the ``repr`` string of a value JSON could not hold.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire.api import GivenExperiment
from evalwire.config import Config, build_config
from evalwire.errors import UsageError
from evalwire.executor import Executor, Unit
from evalwire.models import Dataset, Example, ExperimentResult, ExperimentSpec, Run
from evalwire.plugins import Plugins, hookimpl
from evalwire.store import queries
from evalwire.store.db import open_store, store_location
from evalwire.store.queries import RESCORED_FROM, StoredExperiment
from evalwire.unit import Policy, Work

if TYPE_CHECKING:
    from collections.abc import Generator

#: ``qa[model=a]#2`` → ``qa``: how a sweep names its arms and replicates.
_SWEEP_SUFFIX = re.compile(r"^(?P<base>.+?)(?:\[[^\[\]]*\])?(?:#\d+)?$")
#: Settings of ``[experiments.NAME]`` that would make a sweep of the rescore.
_SWEEP_KEYS = ("matrix", "repeats", "select", "mode")


class StoredTaskError(Exception):
    """A recorded task error whose text cannot be raised under its own type name."""


@dataclass(frozen=True)
class Rescored:
    """What :func:`rescore` did: the original record, the new one, the exit status."""

    original: StoredExperiment
    result: ExperimentResult
    exitstatus: int
    store: Path


@dataclass(frozen=True)
class _Recorded:
    unit: Unit
    output: Any
    error: str | None


class Replay(GivenExperiment):
    """A plugin discovering one experiment whose task replays recorded outputs.

    Every recorded run becomes its own :class:`Example` object, so the task
    (which only sees the example) finds the run by the object's identity;
    the executor wrapper gives each unit back its recorded index and
    repetition. That is why the rescore runs in this process.
    """

    def __init__(self, runs: Sequence[Run], rate_limits: Policy) -> None:
        self._recorded: dict[int, _Recorded] = {}
        for run in runs:
            unit = Unit(run.index, run.example, run.repetition)
            self._recorded[id(run.example)] = _Recorded(unit, run.output, run.error)
        self._rate_limits = rate_limits
        self.examples = [run.example for run in runs]
        super().__init__()

    def offer(self, spec: ExperimentSpec, dataset: Dataset) -> None:
        """Discover ``spec`` (whose task is :meth:`replay`) on ``dataset``."""
        self.spec = spec
        self.dataset = dataset

    async def replay(self, example: Example) -> Any:
        recorded = self._recorded.get(id(example))
        if recorded is None:  # pragma: no cover - every example comes from the record
            raise LookupError(f"example '{example.id}' has no recorded output")
        if recorded.error is not None:
            raise _stored_error(recorded.error, self._rate_limits)
        return recorded.output

    def place(self, unit: Unit) -> Unit:
        """``unit`` at its recorded index and repetition."""
        recorded = self._recorded.get(id(unit.example))
        return unit if recorded is None else recorded.unit

    @hookimpl(tryfirst=True)
    def evalwire_adapt_task(self, task: Any) -> Any:
        return self.replay if task == self.replay else None

    @hookimpl(wrapper=True)
    def evalwire_make_executor(self) -> Generator[None, Executor | None, Executor | None]:
        executor = yield
        return None if executor is None else _Replaying(executor, self)


class _Replaying:
    """An executor that runs each unit at its recorded index and repetition."""

    def __init__(self, inner: Executor, replay: Replay) -> None:
        self.inner = inner
        self.replay = replay

    def execute(self, work: Work, units: Iterable[Unit]) -> Iterator[Run]:
        place = self.replay.place
        return self.inner.execute(work, (place(u) for u in units))

    def close(self) -> None:
        self.inner.close()


def rescore(
    ref: str,
    *,
    store: str | None = None,
    experiments_dir: str | None = None,
    name: str | None = None,
    config_path: str | None = None,
    plugin_args: Sequence[str] = (),
    verbosity: int = 0,
) -> Rescored:
    """Score the outputs of the record ``ref`` names with the current evaluators.

    ``name`` is the experiment whose evaluators score them (default: the
    record's name, or for a sweep arm its experiment's) and scopes ``last``.
    Raises :class:`UsageError` when there is nothing to rescore.
    """
    from evalwire.builtin.store import TASK_HASH_KEY
    from evalwire.session import Session

    config = build_config(
        {
            "experiments_dir": experiments_dir,
            "repetitions": 1,
            "retries": 0,
            "executor": "threads",
            "dry_run": False,
            "resume": False,
            "verbosity": verbosity,
        },
        config_path=config_path,
    )
    path = store_location(config, store, reading=True)
    assert path is not None  # reading never turns the store off
    original, runs = _recorded(path, ref, name)

    found = _experiment(Plugins.load(plugin_args), config, name or original.name)
    family = found.family
    replay = Replay(runs, Policy(rate_limit_errors=config.rate_limit_errors))
    replay.offer(
        ExperimentSpec(
            name=original.name,
            task=replay.replay,
            evaluators=dict(found.evaluators),
            dataset=original.dataset,
            params=dict(original.params),
            metadata={**original.metadata, RESCORED_FROM: original.id},
            path=found.path,
            error=found.error,
            base=family if family != original.name else None,
            **_sweep_fields(original),
        ),
        Dataset(
            name=original.dataset,
            examples=replay.examples,
            version=original.dataset_version,
            size=len(runs),
            source=f"store:{original.id}",
        ),
    )

    config.names = (original.name,)
    config.options.update(store_path=str(path), no_store=False)
    config.settings = _unswept(config.settings, family)
    config.stash[TASK_HASH_KEY] = original.task_hash
    plugins = Plugins.load([*plugin_args, "no:dirs"], extra=[("evalwire.rescore", replay)])
    session = Session(config, plugins)
    (result,) = session.run()
    return Rescored(original, result, session.exitstatus, path)


def _recorded(path: Path, ref: str, name: str | None) -> tuple[StoredExperiment, list[Run]]:
    conn = open_store(path, create=False)
    if conn is None:
        raise UsageError(f"no store at {path}: nothing to rescore (see `evalwire history`)")
    try:
        original = queries.resolve(conn, ref, name=name, where=f"the store {path}")
        runs = [r.to_run() for r in queries.iter_runs(conn, original.id)]
    finally:
        conn.close()
    if not runs:
        raise UsageError(f"experiment {original.id[:8]} ({original.name}) recorded no runs")
    return original, runs


def _experiment(finder: Plugins, config: Config, wanted: str) -> ExperimentSpec:
    """The discovered experiment called ``wanted``, or that a sweep arm ``wanted`` is of."""
    specs = {spec.name: spec for spec in finder.discover(config)}
    match = _SWEEP_SUFFIX.match(wanted)
    for candidate in (wanted, match.group("base") if match else wanted):
        if candidate in specs:
            return specs[candidate]
    raise UsageError(
        f"no experiment named '{wanted}' in {config.experiments_dir} to take evaluators from; "
        f"found: {', '.join(sorted(specs)) or 'none'} (choose one with --name NAME)"
    )


def _sweep_fields(original: StoredExperiment) -> dict[str, Any]:
    metadata = original.metadata
    arm = metadata.get("arm")
    replicate = metadata.get("replicate")
    group = metadata.get("group")
    return {
        "arm": dict(arm) if isinstance(arm, dict) else {},
        "replicate": replicate if isinstance(replicate, int) else None,
        "group": group if isinstance(group, str) else None,
    }


def _unswept(settings: dict[str, Any], family: str) -> dict[str, Any]:
    """``settings`` with ``[experiments.FAMILY]`` neither sweeping nor retrying."""
    experiments = settings.get("experiments")
    if not isinstance(experiments, dict) or not isinstance(experiments.get(family), dict):
        return settings
    settings = copy.deepcopy(settings)
    table = settings["experiments"][family]
    for key in _SWEEP_KEYS:
        table.pop(key, None)
    table["retries"] = 0
    return settings


def _stored_error(text: str, rate_limits: Policy) -> Exception:
    """An exception whose ``Type: message`` reads as ``text`` does.

    Raised under the recorded type's name, unless that name would make the
    executor wait it out as a rate limit instead of recording it.
    """
    name, sep, message = text.partition(": ")
    if sep and name.isidentifier():
        error: Exception = type(name, (Exception,), {"__module__": __name__})(message)
        if not rate_limits.is_rate_limit(error):
            return error
    return StoredTaskError(text)
