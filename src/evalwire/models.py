"""The plain data types that cross stage boundaries.

Every stage receives and returns these; behaviour lives in plugins. They are
frozen dataclasses (cheap, picklable, safe to share between threads) except
:class:`ExperimentResult`, which the core fills in as runs complete.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Resume",
    "Dataset",
    "Evaluation",
    "Example",
    "ExperimentResult",
    "ExperimentSpec",
    "Run",
    "ScoreSummary",
]


@dataclass(frozen=True, slots=True)
class Example:
    """One row of a dataset: what the task gets and what a good answer looks like."""

    id: str
    input: dict[str, Any]
    expected: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> dict[str, Any]:
        """Phoenix's name for ``expected``, so code written for Phoenix keeps working."""
        return self.expected


@dataclass(frozen=True)
class Dataset:
    """A named, versioned collection of examples.

    ``examples`` may be any re-iterable collection: a list, or an object whose
    ``__iter__`` streams rows from a file each time it is called, so a dataset
    larger than memory is never held in it. ``size`` is the number of
    examples when known cheaply (used for progress), else ``None``.
    """

    name: str
    examples: Iterable[Example]
    version: str | None = None
    size: int | None = None
    source: str | None = None

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    def __len__(self) -> int:
        if self.size is not None:
            return self.size
        try:
            return len(self.examples)  # type: ignore[arg-type]
        except TypeError:
            return sum(1 for _ in self.examples)


@dataclass(frozen=True)
class ExperimentSpec:
    """What a discoverer found: a task under test and the evaluators that score it.

    ``dataset`` names the dataset to load (defaults to ``name``);
    ``experiment_name`` is the name results are recorded under (default
    ``{prefix}_{dataset}_{UTC time}``). A discoverer
    that finds an experiment it cannot load (a ``task.py`` that fails to
    import) returns a spec with ``error`` set and ``task`` ``None``: that
    experiment fails, the others still run.
    """

    name: str
    task: Any
    evaluators: Mapping[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Any = None
    error: str | None = None
    experiment_name: str | None = None
    base: str | None = None
    arm: dict[str, Any] = field(default_factory=dict)
    replicate: int | None = None
    group: str | None = None

    @property
    def dataset_name(self) -> str:
        return self.dataset if self.dataset is not None else self.family

    @property
    def family(self) -> str:
        """The experiment this spec belongs to: its own name, or a sweep arm's experiment."""
        return self.base if self.base is not None else self.name


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluator's verdict on one run.

    ``error`` is set (and ``score`` is ``None``) when the evaluator raised;
    an error is never silently counted as a zero.
    """

    name: str
    score: float | None = None
    label: str | None = None
    explanation: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    annotator_kind: str = "CODE"


@dataclass(frozen=True, slots=True)
class Run:
    """One unit of work done: an example, a repetition, the task's output and its scores.

    ``index`` is the example's position in the dataset; results are ordered by
    ``(index, repetition)`` whatever order the runs completed in. ``trace_id``
    (32 hex digits) names the trace of the task's span when a tracer was on.
    """

    example: Example
    repetition: int
    output: Any
    error: str | None
    started_at: float
    ended_at: float
    attempts: int = 1
    evaluations: tuple[Evaluation, ...] = ()
    index: int = 0
    trace_id: str | None = None

    @property
    def example_id(self) -> str:
        return self.example.id

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at

    @property
    def ok(self) -> bool:
        return self.error is None and all(e.error is None for e in self.evaluations)


@dataclass(slots=True)
class ScoreSummary:
    """Running aggregate of one evaluator's scores over an experiment."""

    count: int = 0
    total: float = 0.0
    errors: int = 0

    def add(self, evaluation: Evaluation) -> None:
        if evaluation.error is not None:
            self.errors += 1
            return
        if evaluation.score is None:  # a label-only verdict has no mean
            return
        self.count += 1
        self.total += evaluation.score

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan


#: What an experiment's summary says wherever it is written (the JSON report, the store).
SUMMARY_FIELDS = (
    "id",
    "name",
    "experiment_name",
    "dataset",
    "dataset_version",
    "status",
    "error",
    "started_at",
    "ended_at",
    "duration",
    "total",
    "completed",
    "task_errors",
    "evaluation_errors",
)


@dataclass
class ExperimentResult:
    """What one experiment produced.

    ``status`` is ``"passed"`` when every unit ran and was scored without
    error, ``"failed"`` when some task or evaluator raised, and ``"error"``
    when the experiment could not run at all (``error`` says why).
    ``runs`` holds every run in example order when the session keeps runs
    (the Python API does; the CLI streams them to reporters instead).
    """

    id: str
    name: str
    experiment_name: str
    dataset: str
    dataset_version: str | None = None
    status: str = "passed"
    error: str | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    total: int | None = None
    completed: int = 0
    task_errors: int = 0
    scores: dict[str, ScoreSummary] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    arm: dict[str, Any] = field(default_factory=dict)
    replicate: int | None = None
    group: str | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.ended_at - self.started_at)

    @property
    def evaluation_errors(self) -> int:
        return sum(s.errors for s in self.scores.values())

    @property
    def failed(self) -> bool:
        return self.status != "passed"

    def mean(self, evaluator: str) -> float:
        summary = self.scores.get(evaluator)
        return summary.mean if summary is not None else math.nan

    def record(self, run: Run) -> None:
        """Fold one completed run into the aggregates."""
        self.completed += 1
        if run.error is not None:
            self.task_errors += 1
        scores = self.scores
        for evaluation in run.evaluations:
            summary = scores.get(evaluation.name)
            if summary is None:
                summary = scores[evaluation.name] = ScoreSummary()
            summary.add(evaluation)

    def to_dict(self, *, runs: Iterable[Run] | None = None) -> dict[str, Any]:
        """A JSON-ready summary; with ``runs``, those runs are included too."""
        data: dict[str, Any] = {f: getattr(self, f) for f in SUMMARY_FIELDS}
        data.update(
            {
                "scores": {
                    name: {
                        "mean": None if s.count == 0 else s.mean,
                        "count": s.count,
                        "errors": s.errors,
                    }
                    for name, s in sorted(self.scores.items())
                },
                "params": self.params,
                "metadata": self.metadata,
                "dry_run": self.dry_run,
                "base": self.base,
                "arm": self.arm,
                "replicate": self.replicate,
                "group": self.group,
            }
        )
        if runs is not None:
            data["runs"] = [run_to_dict(r) for r in runs]
        return data


def run_to_dict(run: Run, *, default: Callable[[Any], Any] = repr) -> dict[str, Any]:
    """A JSON-ready view of a run (outputs that JSON cannot hold become their repr)."""
    return {
        "example_id": run.example.id,
        "index": run.index,
        "repetition": run.repetition,
        "input": run.example.input,
        "expected": run.example.expected,
        "metadata": run.example.metadata,
        "output": run.output,
        "error": run.error,
        "attempts": run.attempts,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "evaluations": [evaluation_to_dict(e) for e in run.evaluations],
    }


def evaluation_to_dict(evaluation: Evaluation) -> dict[str, Any]:
    """A JSON-ready view of an evaluation (or of anything with its fields, as stored)."""
    return {
        "name": evaluation.name,
        "score": evaluation.score,
        "label": evaluation.label,
        "explanation": evaluation.explanation,
        "metadata": evaluation.metadata,
        "error": evaluation.error,
        "annotator_kind": evaluation.annotator_kind,
    }


@dataclass(frozen=True)
class Resume:
    """An unfinished record of an experiment that a store can continue (``--resume``).

    ``previous`` are the runs it already holds; only the (example, repetition)
    pairs not among them run again, and the record keeps ``experiment_id``.
    """

    experiment_id: str
    previous: tuple[Run, ...] = ()
    started_at: float | None = None

    @property
    def done(self) -> frozenset[tuple[str, int]]:
        return frozenset((run.example.id, run.repetition) for run in self.previous)
