"""Quality gates: thresholds an experiment's scores must meet for the session to pass.

A gate says "the mean of evaluator E must be at least T". Gates come from
three places, and for one (experiment, evaluator) the first of these that
names the evaluator wins:

1. the command line, ``--fail-under EVALUATOR=VALUE`` (repeatable),
2. the experiment's own table, ``[experiments.NAME] fail_under = {accuracy = 0.8}``,
3. the config file's top level, ``fail_under = {accuracy = 0.8}``.

A gate from (1) or (3) applies to every experiment that has the evaluator,
and fails as *missing* when no experiment has it; a gate from (2) names its
experiment, so it fails as missing when that experiment has no such evaluator.

Each gate checked becomes a :class:`GateResult`, a plain record other
reporters (JUnit, markdown) read from ``config.stash["gates"]``. The
``gates`` plugin (:mod:`evalwire.builtin.gates`) wires this to the hooks.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalwire.errors import UsageError

if TYPE_CHECKING:
    from evalwire.config import Config
    from evalwire.models import ExperimentResult, ExperimentSpec

#: The key of ``config.stash`` holding the list of :class:`GateResult` records.
STASH_KEY = "gates"
#: The option (``config.options``) and config-file key of ``--fail-under``.
FAIL_UNDER = "fail_under"
#: Float rounding a mean may be short of its threshold by and still pass
#: (seven scores of 1.0 out of ten must meet ``0.7`` however they were summed).
TOLERANCE = 1e-9

_CLI_SOURCE = "--fail-under"


@dataclass(frozen=True)
class Gate:
    """One threshold: ``evaluator``'s mean must be at least ``threshold``.

    ``experiment`` is ``None`` for a gate that applies to every experiment
    having the evaluator; ``source`` says where it was given, for messages.
    """

    evaluator: str
    threshold: float
    source: str
    experiment: str | None = None
    kind: str = "fail_under"


@dataclass(frozen=True)
class GateResult:
    """A gate checked against one experiment's scores.

    ``experiment`` is ``None`` when the gate applied to no experiment (no
    experiment has the evaluator). ``measured`` is the evaluator's mean, or
    ``None`` when there was nothing to measure. ``kind`` is ``"fail_under"``
    (``"max_regression"`` is reserved for baseline gates). ``reason`` says
    why a gate did not pass when the numbers alone do not (no scores, the
    experiment could not run); ``missing`` is true when the evaluator the
    gate names is not there at all. :meth:`describe` says it in words.
    """

    experiment: str | None
    evaluator: str
    kind: str
    threshold: float
    measured: float | None
    passed: bool
    reason: str = ""
    missing: bool = False
    experiment_id: str | None = None
    source: str = ""

    @property
    def verdict(self) -> str:
        """``"pass"``, ``"fail"`` or ``"missing"``."""
        if self.passed:
            return "pass"
        return "missing" if self.missing else "fail"

    @property
    def threshold_text(self) -> str:
        """The condition the gate asks for: ``">= 0.8"``."""
        if self.kind == "fail_under":
            return f">= {format_number(self.threshold)}"
        return f"{self.kind} {format_number(self.threshold)}"

    def describe(self) -> str:
        """One line for people: ``"mean 0.6667, needs >= 0.8"`` or why it could not pass."""
        if self.reason:
            return self.reason
        measured = format_number(self.measured, near=self.threshold)
        return f"mean {measured}, needs {self.threshold_text}"


@dataclass(frozen=True)
class GatePlan:
    """Every gate of a session: the global ones, and each experiment's own."""

    global_gates: Mapping[str, Gate]
    experiment_gates: Mapping[str, Mapping[str, Gate]]

    def __bool__(self) -> bool:
        return bool(self.global_gates) or any(self.experiment_gates.values())

    def for_experiment(self, name: str) -> dict[str, Gate]:
        """The gates that may apply to experiment ``name``, by evaluator.

        The command line beats the experiment's table, which beats the file's
        top level.
        """
        gates: dict[str, Gate] = {}
        for evaluator, gate in self.global_gates.items():
            if gate.source != _CLI_SOURCE:
                gates[evaluator] = gate
        gates.update(self.experiment_gates.get(name, {}))
        for evaluator, gate in self.global_gates.items():
            if gate.source == _CLI_SOURCE:
                gates[evaluator] = gate
        return gates


# -- reading the gates --------------------------------------------------------


def plan(config: Config) -> GatePlan:
    """The session's gates, from the command line and the config file.

    A malformed gate is a :class:`UsageError` naming where it was given.
    """
    file_name = config.config_path.name if config.config_path is not None else "config file"
    global_gates: dict[str, Gate] = {}
    top = config.settings.get(FAIL_UNDER)
    if top is not None:
        source = f"{file_name} fail_under"
        global_gates.update(_from_table(top, source, None))
    given = config.options.get(FAIL_UNDER)
    if given:
        global_gates.update(_from_option(given))
    experiment_gates: dict[str, dict[str, Gate]] = {}
    for name, table in config.section("experiments").items():
        if not isinstance(table, dict) or table.get(FAIL_UNDER) is None:
            continue
        source = f"{file_name} [experiments.{name}] fail_under"
        experiment_gates[name] = _from_table(table[FAIL_UNDER], source, name)
    return GatePlan(global_gates, experiment_gates)


def _from_table(table: Any, source: str, experiment: str | None) -> dict[str, Gate]:
    if not isinstance(table, Mapping):
        raise UsageError(
            f"{source} must be a table of evaluator = threshold "
            f"(fail_under = {{accuracy = 0.8}}), not {table!r}"
        )
    return {
        str(name): Gate(str(name), _threshold(value, f"{source}: '{name}'"), source, experiment)
        for name, value in table.items()
    }


def _from_option(given: Any) -> dict[str, Gate]:
    """``--fail-under`` values: ``EVALUATOR=VALUE`` strings (or, from the Python
    API, a mapping or ``(evaluator, value)`` pairs)."""
    items: Iterable[Any] = given.items() if isinstance(given, Mapping) else given
    if isinstance(given, str):
        items = [given]
    gates: dict[str, Gate] = {}
    for item in items:
        if isinstance(item, str):
            name, sep, value = item.rpartition("=")
            if not sep or not name.strip():
                raise UsageError(f"--fail-under expects EVALUATOR=VALUE, got {item!r}")
            name = name.strip()
            threshold = _threshold(value.strip(), f"--fail-under {item!r}", parse=True)
        else:
            try:
                name, value = item
            except (TypeError, ValueError):
                raise UsageError(
                    f"fail_under expects EVALUATOR=VALUE or (evaluator, value), got {item!r}"
                ) from None
            name = str(name)
            threshold = _threshold(value, f"fail_under {name!r}")
        gates[name] = Gate(name, threshold, _CLI_SOURCE)
    return gates


def _threshold(value: Any, where: str, *, parse: bool = False) -> float:
    if parse and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{where}: the threshold must be a number") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise UsageError(f"{where}: the threshold must be a number, not {value!r}")
    if not math.isfinite(number):
        raise UsageError(f"{where}: the threshold must be a finite number, not {value!r}")
    return number


# -- checking them ------------------------------------------------------------


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
    records = []
    for evaluator, gate in gate_plan.global_gates.items():
        if evaluator in known:
            continue
        reason = f"no experiment has an evaluator named '{evaluator}'"
        if broken:
            reason += f" ({broken} could not be loaded)"
        records.append(_missing(gate, None, reason))
    names = {spec.name for spec in specs}
    for name, gates in gate_plan.experiment_gates.items():
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


def check(gate_plan: GatePlan, spec: ExperimentSpec, result: ExperimentResult) -> list[GateResult]:
    """Every gate that applies to one finished experiment, checked."""
    evaluators = declared_evaluators([spec]) | set(result.scores)
    records = []
    for evaluator, gate in gate_plan.for_experiment(spec.name).items():
        if gate.experiment is None and evaluator not in evaluators:
            continue  # a global gate applies only where its evaluator is
        records.append(_check_one(gate, evaluator, evaluators, result))
    return records


def _check_one(
    gate: Gate, evaluator: str, evaluators: Collection[str], result: ExperimentResult
) -> GateResult:
    summary = result.scores.get(evaluator)
    measured = summary.mean if summary is not None and summary.count else None
    passed = False
    missing = False
    if result.status == "error" and summary is None:
        reason = "experiment could not run"
    elif evaluator not in evaluators:
        missing = True
        reason = f"experiment '{result.name}' has no evaluator named '{evaluator}'"
    elif measured is None:
        errors = summary.errors if summary is not None else 0
        reason = "no scores"
        if errors:
            reason += f" ({errors} evaluation error{'s' if errors != 1 else ''})"
    elif result.status == "error":
        reason = "experiment did not finish"
    else:
        passed = measured >= gate.threshold - TOLERANCE
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
    )


def format_number(value: float | None, *, near: float | None = None) -> str:
    """A score for people: four significant digits, more when that would hide
    which side of ``near`` (a threshold) it falls on."""
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:.4g}"
    if near is not None and value != near and float(text) == near:
        text = repr(value)
    return text


# -- regression gates: the hook point for --baseline / --max-regression -------
#
# TODO(issue 3, item 8): ``--baseline last|ID --max-regression EVALUATOR=DELTA``
# needs the embedded store (evalwire.store) to look up the baseline
# experiment's means, and is not implemented yet. When the store can answer
# "the mean of EVALUATOR in the baseline of experiment NAME":
#   * read the options in ``plan()`` into ``Gate(kind="max_regression",
#     threshold=DELTA)`` records (a separate mapping on GatePlan, since a
#     fail_under and a max_regression gate on one evaluator both apply);
#   * in ``check()``, compare ``measured`` with ``baseline - DELTA`` and emit
#     a ``GateResult(kind="max_regression", ...)``; GateResult may then need a
#     ``baseline`` field (the baseline's mean and experiment id);
#   * the plugin, the table and the JUnit/markdown reporters already handle
#     any ``kind`` (they show ``kind`` and ``threshold``) and need no change,
#     except printing the baseline once the field exists.
