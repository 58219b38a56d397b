"""Checking the gates: each experiment's scores against its ``fail_under``
gates, and against its baseline's for its ``max_regression`` gates."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from evalwire.gating.names import LAST, MAX_REGRESSION
from evalwire.gating.records import TOLERANCE, Gate, GatePlan, GateResult

if TYPE_CHECKING:
    from evalwire.models import ExperimentResult, ExperimentSpec
    from evalwire.store.baseline import Baseline


def declared_evaluators(specs: Iterable[ExperimentSpec]) -> set[str]:
    """Every evaluator name the discovered experiments declare."""
    return {str(name) for spec in specs for name in (spec.evaluators or ())}


def unmatched(
    gate_plan: GatePlan, specs: Collection[ExperimentSpec], *, selected: Collection[str] = ()
) -> list[GateResult]:
    """A failed, *missing* record for each gate that can apply nowhere.

    That is a global gate whose evaluator no experiment declares, and an
    experiment's own gate when there is no such experiment (a misspelt
    ``[experiments.NAME]``). ``selected`` are the names chosen with
    ``--name``: the gates of experiments left out on purpose are not missing.
    """
    known = declared_evaluators(specs)
    broken = sum(1 for spec in specs if spec.error is not None)
    names = {spec.name for spec in specs}
    records = []
    for global_gates, experiment_gates in (
        (gate_plan.global_gates, gate_plan.experiment_gates),
        (gate_plan.global_regressions, gate_plan.experiment_regressions),
    ):
        for evaluator, gate in global_gates.items():
            if evaluator in known:
                continue
            reason = f"no experiment has an evaluator named '{evaluator}'"
            if broken:
                reason += f" ({broken} could not be loaded)"
            records.append(_missing(gate, None, reason))
        for name, gates in experiment_gates.items():
            if name in names or (selected and name not in selected):
                continue
            for gate in gates.values():
                records.append(_missing(gate, name, f"no experiment named '{name}' was found"))
    return records


def _missing(gate: Gate, experiment: str | None, reason: str) -> GateResult:
    return GateResult(
        experiment=experiment,
        evaluator=gate.evaluator,
        kind=gate.kind,
        threshold=gate.threshold,
        measured=None,
        passed=False,
        reason=reason,
        missing=True,
        source=gate.source,
    )


def check(
    gate_plan: GatePlan,
    spec: ExperimentSpec,
    result: ExperimentResult,
    baseline: Baseline | str | None = None,
) -> list[GateResult]:
    """Every gate that applies to one finished experiment, checked.

    ``baseline`` is the record its regression gates compare with, or a
    string saying why there is none (see :func:`choose_baseline`).
    """
    evaluators = declared_evaluators([spec]) | set(result.scores)
    records = []
    for gates in (gate_plan.for_experiment(spec.name), gate_plan.regressions_for(spec.name)):
        for evaluator, gate in gates.items():
            if gate.experiment is None and evaluator not in evaluators:
                continue  # a global gate applies only where its evaluator is
            records.append(_check_one(gate, evaluator, evaluators, result, baseline))
    return records


def _check_one(
    gate: Gate,
    evaluator: str,
    evaluators: Collection[str],
    result: ExperimentResult,
    baseline: Baseline | str | None,
) -> GateResult:
    summary = result.scores.get(evaluator)
    measured = summary.mean if summary is not None and summary.count else None
    regression = gate.kind == MAX_REGRESSION
    found = baseline if regression and not isinstance(baseline, str) else None
    reference = found.mean(evaluator) if found is not None else None
    no_baseline = ""
    if regression and found is None:
        no_baseline = f"no baseline: {baseline or 'none was looked up'}"
    elif found is not None and reference is None:
        no_baseline = f"no baseline: record {found.short_id} has no mean for '{evaluator}'"
    passed = False
    missing = False
    if result.status == "error" and summary is None:
        reason = "experiment could not run"
    elif evaluator not in evaluators:
        missing = True
        reason = f"experiment '{result.name}' has no evaluator named '{evaluator}'"
    elif no_baseline:
        missing = True
        reason = no_baseline
    elif measured is None:
        errors = summary.errors if summary is not None else 0
        reason = "no scores"
        if errors:
            reason += f" ({errors} evaluation error{'s' if errors != 1 else ''})"
    elif result.status == "error":
        reason = "experiment did not finish"
    else:
        bound = gate.threshold if reference is None else reference - gate.threshold
        passed = measured >= bound - TOLERANCE
        reason = ""  # the numbers say it
    return GateResult(
        experiment=result.name,
        evaluator=evaluator,
        kind=gate.kind,
        threshold=gate.threshold,
        measured=measured,
        passed=passed,
        reason=reason,
        missing=missing,
        experiment_id=result.id,
        source=gate.source,
        baseline=reference,
        baseline_id=found.id if found is not None else None,
    )


# -- baselines ------------------------------------------------------------------


def choose_baseline(
    refs: Collection[str],
    name: str,
    records: Mapping[str, Baseline],
    last: Baseline | None,
    where: str,
) -> Baseline | str:
    """The record experiment ``name`` is compared with, or why there is none.

    ``refs`` are its baseline references (``last`` and/or ids), ``records``
    the records those ids name, ``last`` its most recent finished record.
    A record named after the experiment wins; then ``last``, if asked for;
    then the one record given, if only one was.
    """
    given = [records[r] for r in refs if r != LAST and r in records]
    for record in given:
        if record.name == name:
            return record
    if LAST in refs:
        if last is not None:
            return last
        return f"no finished record of '{name}' from before this session in {where}"
    if len(given) == 1:
        return given[0]
    ids = ", ".join(r.short_id for r in given)
    return f"none of the baseline records ({ids}) is of experiment '{name}'"
