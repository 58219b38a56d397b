"""Function API with Phoenix's ``run_experiment`` signature, run by evalwire's engine.

Unlike Phoenix's sync function, ours runs examples concurrently; unlike its
async one, it adds no fixed cost per call. Results are recorded where the
installed plugins record them: the embedded store, and Phoenix when a client
is given (or configured).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalwire.config import build_config
from evalwire.models import Dataset, Evaluation, Example, ExperimentResult, ExperimentSpec, Run
from evalwire.plugins import Plugins, hookimpl
from evalwire.session import run_session


@dataclass
class RanExperiment:
    """What ``run_experiment`` returns; the field names follow Phoenix's."""

    experiment_id: str
    dataset_id: str | None
    dataset_version_id: str | None
    task_runs: list[Run]
    evaluation_runs: list[Evaluation]
    experiment_metadata: dict[str, Any]
    project_name: str | None = None
    result: ExperimentResult | None = field(default=None, repr=False)


def as_dataset(dataset: Any) -> Dataset:
    """An evalwire :class:`Dataset` from ours or from a Phoenix client ``Dataset``."""
    if isinstance(dataset, Dataset):
        return dataset
    # Phoenix names an example by its node id (what runs are posted against);
    # an id given at upload time is kept in ``id`` only on newer servers.
    examples = [
        Example(
            id=str(row.get("node_id") or row["id"]),
            input=dict(row.get("input") or {}),
            expected=dict(row.get("output") or {}),
            metadata=dict(row.get("metadata") or {}),
        )
        for row in dataset.examples
    ]
    return Dataset(
        name=dataset.name,
        examples=examples,
        version=getattr(dataset, "version_id", None),
        source=f"phoenix:{getattr(dataset, 'id', '')}",
    )


def as_evaluators(evaluators: Any) -> dict[str, Any]:
    """Evaluators given as one callable, a sequence or a mapping, by name."""
    if evaluators is None:
        return {}
    if isinstance(evaluators, Mapping):
        return dict(evaluators)
    if callable(evaluators):
        evaluators = [evaluators]
    named: dict[str, Any] = {}
    for evaluator in evaluators:
        name = getattr(evaluator, "__name__", None) or type(evaluator).__name__
        named[name] = evaluator
    return named


class GivenExperiment:
    """A plugin that discovers exactly one experiment, made in code, on its dataset.

    The dataset is matched by the experiment's name, not the spec object: the
    session may hand loaders a copy (with evaluators named in ``evalwire.toml``).
    """

    def __init__(self, spec: ExperimentSpec | None = None, dataset: Dataset | None = None) -> None:
        self.spec = spec
        self.dataset = dataset

    @hookimpl
    def evalwire_discover(self) -> list[ExperimentSpec]:
        return [] if self.spec is None else [self.spec]

    @hookimpl(tryfirst=True)
    def evalwire_load_dataset(self, spec: ExperimentSpec) -> Dataset | None:
        if self.spec is None or spec.name != self.spec.name:
            return None
        return self.dataset


def run_experiment(
    *,
    dataset: Any,
    task: Callable[..., Any],
    evaluators: Any = None,
    experiment_name: str | None = None,
    experiment_description: str | None = None,
    experiment_metadata: Mapping[str, Any] | None = None,
    rate_limit_errors: Any = None,
    dry_run: bool | int = False,
    print_summary: bool = True,
    timeout: float | None = 60,
    repetitions: int = 1,
    retries: int = 3,
    client: Any = None,
    concurrency: int = 10,
    plugin_args: Sequence[str] = (),
    plugins: Iterable[Any] = (),
) -> RanExperiment:
    """Run ``task`` on every example of ``dataset`` and score it, like Phoenix's.

    ``concurrency`` is the number of examples in flight. Failures of the task
    or evaluators are recorded on the runs (as Phoenix does), not raised.
    """
    data = as_dataset(dataset)
    metadata = dict(experiment_metadata or {})
    if experiment_description:
        metadata.setdefault("description", experiment_description)
    spec = ExperimentSpec(
        name=data.name,
        task=task,
        evaluators=as_evaluators(evaluators),
        dataset=data.name,
        metadata=metadata,
        experiment_name=experiment_name,
    )
    if isinstance(rate_limit_errors, type):
        rate_limit_errors = (rate_limit_errors,)
    config = build_config(
        {
            "dry_run": dry_run or None,
            "timeout": timeout,
            "repetitions": repetitions,
            "retries": retries,
            "task_concurrency": concurrency,
            "rate_limit_errors": tuple(rate_limit_errors) if rate_limit_errors else None,
            "keep_runs": True,
        },
        options={"phoenix_client": client, "print_summary": print_summary},
    )
    extra = [
        ("evalwire.api", GivenExperiment(spec, data)),
        *[p if isinstance(p, tuple) else (None, p) for p in plugins],
    ]
    loaded = Plugins.load(["no:dirs", *plugin_args], extra=extra)
    (result,), _ = run_session(config, loaded)
    dataset_id = (
        data.source.split(":", 1)[1] if data.source and data.source.startswith("phoenix:") else None
    )
    recorded = "phoenix_experiment_id" in result.extra
    if recorded:  # what Phoenix holds, as Phoenix's own function returns it
        from evalwire.phoenix.posting import experiment_metadata

        metadata = experiment_metadata(result.dataset, result.metadata, result.params)
    else:
        metadata = {**result.metadata, **result.params}
    return RanExperiment(
        experiment_id=result.extra.get("phoenix_experiment_id", result.id),
        dataset_id=dataset_id,
        dataset_version_id=data.version,
        task_runs=result.runs,
        evaluation_runs=[e for run in result.runs for e in run.evaluations],
        experiment_metadata=metadata,
        project_name=result.extra.get("phoenix_project_name"),
        result=result,
    )


async def async_run_experiment(**kwargs: Any) -> RanExperiment:
    """:func:`run_experiment` for async code: it runs off the caller's event loop.

    evalwire's executor keeps its own event loops, so awaiting this never
    blocks the caller's loop and adds no per-call cost beyond a thread hop.
    """
    return await asyncio.to_thread(run_experiment, **kwargs)
