"""Sweeps: an experiment run over a grid of parameters, several seeded times each.

A *matrix* (``[experiments.NAME.matrix]`` or ``--matrix KEY=V1,V2``) expands
an experiment into *arms*, one per combination of values; *repeats* run each
arm N times with seeds S, S+1, ... (in ``params["seed"]``), as *replicates*
sharing a group id. Each (arm, replicate) is its own experiment record. After
the runs, :func:`summarize` gives, per experiment, every arm's mean ± standard
deviation over replicates, and picks the best arm by one evaluator.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import statistics
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalwire.errors import UsageError
from evalwire.models import ExperimentResult, ExperimentSpec


def parse_value(text: str) -> Any:
    """A command-line value as TOML would read it: numbers, booleans, else a string."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) else text


def parse_matrix(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["model=a,b", "t=0,0.7"]`` → ``{"model": ["a", "b"], "t": [0, 0.7]}``."""
    matrix: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise UsageError(f"--matrix expects KEY=V1,V2,..., got {item!r}")
        matrix[key] = [parse_value(v) for v in values.split(",")]
    return matrix


def parse_arm_filter(items: Sequence[str]) -> dict[str, Any]:
    """``["model=a"]`` → ``{"model": "a"}``."""
    wanted: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--arm expects KEY=VALUE, got {item!r}")
        wanted[key] = parse_value(value)
    return wanted


def arms(matrix: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the matrix's values, in the order the keys were given."""
    keys = list(matrix)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*matrix.values())]


def arm_label(arm: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in arm.items())


@dataclass(frozen=True)
class SweepSettings:
    """One experiment's sweep: its matrix, replicates, seed base and selection."""

    matrix: dict[str, list[Any]] = field(default_factory=dict)
    repeats: int = 1
    seed: int = 0
    select: str | None = None
    mode: str = "max"

    @property
    def active(self) -> bool:
        return bool(self.matrix) or self.repeats > 1


def settings_for(
    table: Mapping[str, Any],
    *,
    matrix: Mapping[str, list[Any]] | None = None,
    repeats: int | None = None,
    seed: int | None = None,
    select: str | None = None,
    mode: str | None = None,
) -> SweepSettings:
    """Merge an ``[experiments.NAME]`` table with command-line values (which win)."""
    file_matrix = table.get("matrix", {})
    if not isinstance(file_matrix, dict) or not all(
        isinstance(v, list) and v for v in file_matrix.values()
    ):
        raise UsageError("'matrix' must be a table of non-empty lists, e.g. model = ['a', 'b']")
    merged = {**file_matrix, **(matrix or {})}
    chosen_mode = mode or table.get("mode", "max")
    if chosen_mode not in ("max", "min"):
        raise UsageError(f"'mode' must be 'max' or 'min', not {chosen_mode!r}")
    count = repeats if repeats is not None else table.get("repeats", 1)
    if not isinstance(count, int) or count < 1:
        raise UsageError(f"'repeats' must be a whole number of at least 1, not {count!r}")
    return SweepSettings(
        matrix=merged,
        repeats=count,
        seed=seed if seed is not None else table.get("seed", 0),
        select=select or table.get("select"),
        mode=chosen_mode,
    )


def expand(
    spec: ExperimentSpec, sweep: SweepSettings, arm_filter: Mapping[str, Any] | None = None
) -> list[ExperimentSpec]:
    """The experiment's (arm, replicate) specs; the spec itself when there is no sweep."""
    if not sweep.active:
        return [spec]
    chosen = [
        arm
        for arm in (arms(sweep.matrix) if sweep.matrix else [{}])
        if all(arm.get(k) == v for k, v in (arm_filter or {}).items() if k in sweep.matrix)
    ]
    expanded = []
    for arm in chosen:
        group = uuid.uuid4().hex[:12]
        label = f"{spec.name}[{arm_label(arm)}]" if arm else spec.name
        for replicate in range(1, sweep.repeats + 1):
            params = {**spec.params, **arm, "seed": sweep.seed + replicate - 1}
            expanded.append(
                dataclasses.replace(
                    spec,
                    name=f"{label}#{replicate}" if sweep.repeats > 1 else label,
                    base=spec.family,
                    params=params,
                    metadata={
                        **spec.metadata,
                        "arm": arm,
                        "group": group,
                        "replicate": replicate,
                    },
                    arm=arm,
                    replicate=replicate,
                    group=group,
                )
            )
    return expanded


# -- summary -------------------------------------------------------------------


@dataclass
class ArmSummary:
    """One arm over its replicates: per evaluator, mean and standard deviation."""

    arm: dict[str, Any]
    label: str
    replicates: int = 0
    errors: int = 0
    means: dict[str, float] = field(default_factory=dict)
    stdevs: dict[str, float] = field(default_factory=dict)


@dataclass
class Selection:
    """The best arm by one evaluator, and how sure we can be of it."""

    evaluator: str
    mode: str
    best: str | None
    score: float | None
    runner_up: str | None = None
    margin: float | None = None
    noise: float | None = None
    conclusion: str = ""

    @property
    def significant(self) -> bool:
        return self.margin is not None and self.noise is not None and self.margin > self.noise


@dataclass
class SweepSummary:
    """Every arm of one experiment, the evaluators seen, and the selection if asked."""

    experiment: str
    evaluators: list[str]
    arms: list[ArmSummary]
    selection: Selection | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _finite(values: Iterable[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def summarize(
    results: Sequence[ExperimentResult], sweeps: Mapping[str, SweepSettings]
) -> list[SweepSummary]:
    """Per swept experiment: arms × evaluators (mean ± std over replicates) and the pick."""
    summaries = []
    for base, sweep in sweeps.items():
        mine = [r for r in results if r.base == base]
        if not mine:
            continue
        evaluators = sorted({name for r in mine for name in r.scores})
        by_arm: dict[str, list[ExperimentResult]] = {}
        for result in mine:
            by_arm.setdefault(arm_label(result.arm), []).append(result)
        arm_rows = []
        for label, group in by_arm.items():
            row = ArmSummary(arm=dict(group[0].arm), label=label or base, replicates=len(group))
            row.errors = sum(r.task_errors + r.evaluation_errors for r in group) + sum(
                1 for r in group if r.status == "error"
            )
            for name in evaluators:
                values = _finite(r.mean(name) for r in group)
                if values:
                    row.means[name] = statistics.fmean(values)
                    row.stdevs[name] = statistics.stdev(values) if len(values) > 1 else 0.0
            arm_rows.append(row)
        summary = SweepSummary(base, evaluators, arm_rows)
        if sweep.select:
            summary.selection = select(arm_rows, sweep.select, sweep.mode)
        summaries.append(summary)
    return summaries


def select(rows: Sequence[ArmSummary], evaluator: str, mode: str = "max") -> Selection:
    """Pick the best arm by ``evaluator``; ties go to the earlier arm in the matrix."""
    scored = [r for r in rows if evaluator in r.means]
    if not scored:
        return Selection(
            evaluator,
            mode,
            None,
            None,
            conclusion=f"No arm has a score for '{evaluator}' (every arm errored or lacks "
            "that evaluator), so none can be chosen.",
        )
    sign = 1 if mode == "max" else -1
    ranked = sorted(scored, key=lambda r: -sign * r.means[evaluator])  # stable: ties keep order
    best = ranked[0]
    selection = Selection(evaluator, mode, best.label, best.means[evaluator])
    better = "highest" if mode == "max" else "lowest"
    if len(ranked) == 1:
        selection.conclusion = (
            f"Only arm {best.label} has a '{evaluator}' score ({best.means[evaluator]:.3f}); "
            "there is nothing to compare it with."
        )
        return selection
    second = ranked[1]
    margin = abs(best.means[evaluator] - second.means[evaluator])
    noise = max(best.stdevs.get(evaluator, 0.0), second.stdevs.get(evaluator, 0.0))
    selection.runner_up, selection.margin, selection.noise = second.label, margin, noise
    if margin == 0:
        verdict = (
            f"it ties with {second.label}; pick on other grounds (cost, latency) "
            "or run more replicates"
        )
    elif best.replicates < 2 or second.replicates < 2:
        verdict = (
            f"it beats {second.label} by {margin:.3f}, but with one replicate per arm the noise "
            "is unknown: rerun with --repeats 3 or more before acting on it"
        )
    elif margin > noise:
        verdict = (
            f"it beats {second.label} by {margin:.3f}, more than the replicate noise "
            f"(std {noise:.3f}): adopt {best.label}"
        )
    else:
        verdict = (
            f"it beats {second.label} by only {margin:.3f}, within the replicate noise "
            f"(std {noise:.3f}): the difference is not reliable; run more replicates"
        )
    selection.conclusion = (
        f"Best arm by {better} '{evaluator}': {best.label} with {best.means[evaluator]:.3f}; "
        f"{verdict}."
    )
    return selection
