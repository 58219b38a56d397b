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

A *regression* gate says "the mean of evaluator E may be at most DELTA below
the baseline's": ``--max-regression EVALUATOR=DELTA`` (repeatable), or
``max_regression = {accuracy = 0.02}`` in the same two tables, with the same
precedence. The baseline is a record of the embedded store, chosen by
``--baseline`` (repeatable), else ``baseline = ...`` in the experiment's
table, else at the top level, else ``last``:

* ``last``: the experiment's own most recent finished record from before the
  session (see :mod:`evalwire.store.baseline`);
* an id (or unique prefix): that record, for the experiment of the record's
  name; an experiment no given record is named after is compared with
  ``last`` if it is given too, else with the one record given, if only one is
  (``--baseline 1a2b3c`` compares every experiment with one record).

An experiment that has no baseline fails the gate as *missing* ("no
baseline"), so CI notices a baseline that is not there instead of passing in
silence; run once without ``--max-regression`` (or with the gate off) to
record the first one.

Each gate checked becomes a :class:`GateResult`, a plain record other
reporters (JUnit, markdown) read from ``config.stash["gates"]``. The
``gates`` plugin (:mod:`evalwire.builtin.gates`) wires this to the hooks.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalwire.errors import UsageError

if TYPE_CHECKING:
    from evalwire.config import Config
    from evalwire.models import ExperimentResult, ExperimentSpec
    from evalwire.store.baseline import Baseline

#: The key of ``config.stash`` holding the list of :class:`GateResult` records.
STASH_KEY = "gates"
#: The option (``config.options``) and config-file key of ``--fail-under``.
FAIL_UNDER = "fail_under"
#: The option and config-file key of ``--max-regression``.
MAX_REGRESSION = "max_regression"
#: The option and config-file key of ``--baseline``.
BASELINE = "baseline"
#: The baseline that means "this experiment's most recent finished record".
LAST = "last"
#: The minus sign of a regression threshold (``baseline 0.82 − 0.02``).
MINUS = "\u2212"
#: Float rounding a mean may be short of its threshold by and still pass
#: (seven scores of 1.0 out of ten must meet ``0.7`` however they were summed).
TOLERANCE = 1e-9

_CLI_SOURCES = ("--fail-under", "--max-regression")


@dataclass(frozen=True)
class Gate:
    """One threshold: ``evaluator``'s mean must be at least ``threshold`` (kind
    ``fail_under``), or at most ``threshold`` below the baseline's mean (kind
    ``max_regression``).

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
    (``threshold`` is the least mean that passes) or ``"max_regression"``
    (``threshold`` is the drop allowed below ``baseline``, the mean of the
    same evaluator in the store's record ``baseline_id``; :attr:`bound` is
    the least mean that passes). ``reason`` says why a gate did not pass
    when the numbers alone do not (no scores, the experiment could not run,
    no baseline); ``missing`` is true when the evaluator the gate names, or
    the baseline it needs, is not there at all. :meth:`describe` says it in
    words.
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
    baseline: float | None = None
    baseline_id: str | None = None

    @property
    def bound(self) -> float | None:
        """The least mean that passes (``None`` for a regression gate without a baseline)."""
        if self.kind != MAX_REGRESSION:
            return self.threshold
        return None if self.baseline is None else self.baseline - self.threshold

    @property
    def verdict(self) -> str:
        """``"pass"``, ``"fail"`` or ``"missing"``."""
        if self.passed:
            return "pass"
        return "missing" if self.missing else "fail"

    @property
    def threshold_text(self) -> str:
        """The condition the gate asks for: ``">= 0.8"``."""
        if self.kind == FAIL_UNDER:
            return f">= {format_number(self.threshold)}"
        if self.kind == MAX_REGRESSION:
            baseline = "" if self.baseline is None else f" {format_number(self.baseline)}"
            return f"baseline{baseline} {MINUS} {format_number(self.threshold)}"
        return f"{self.kind} {format_number(self.threshold)}"

    def describe(self) -> str:
        """One line for people: ``"mean 0.6667, needs >= 0.8"`` or why it could not pass."""
        if self.reason:
            return self.reason
        measured = format_number(self.measured, near=self.bound)
        if self.kind != MAX_REGRESSION or self.baseline is None or self.measured is None:
            return f"mean {measured}, needs {self.threshold_text}"
        change = self.measured - self.baseline
        how = "above" if change > 0 else "below"
        allowed = format_number(self.threshold)
        within = "within" if self.passed else "more than"
        return (
            f"mean {measured}, {format_number(abs(change))} {how} the baseline "
            f"{format_number(self.baseline)} (record {(self.baseline_id or '?')[:12]})"
            + ("" if change > 0 else f", {within} the {allowed} allowed")
        )


@dataclass(frozen=True)
class GatePlan:
    """Every gate of a session: the global ones, and each experiment's own.

    ``fail_under`` and ``max_regression`` gates are kept apart, since both
    kinds may gate one evaluator. ``baselines`` are the ``--baseline``
    references (or the top level's ``baseline``), ``experiment_baselines``
    each experiment table's.
    """

    global_gates: Mapping[str, Gate]
    experiment_gates: Mapping[str, Mapping[str, Gate]]
    global_regressions: Mapping[str, Gate] = field(default_factory=dict)
    experiment_regressions: Mapping[str, Mapping[str, Gate]] = field(default_factory=dict)
    baselines: tuple[str, ...] = ()
    baselines_from_cli: bool = False
    experiment_baselines: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return (
            bool(self.global_gates) or any(self.experiment_gates.values()) or self.has_regressions
        )

    @property
    def has_regressions(self) -> bool:
        return bool(self.global_regressions) or any(self.experiment_regressions.values())

    def for_experiment(self, name: str) -> dict[str, Gate]:
        """The ``fail_under`` gates that may apply to experiment ``name``, by evaluator.

        The command line beats the experiment's table, which beats the file's
        top level.
        """
        return _layered(self.global_gates, self.experiment_gates.get(name, {}))

    def regressions_for(self, name: str) -> dict[str, Gate]:
        """The ``max_regression`` gates that may apply to experiment ``name``, by evaluator."""
        return _layered(self.global_regressions, self.experiment_regressions.get(name, {}))

    def baselines_for(self, name: str) -> tuple[str, ...]:
        """What experiment ``name`` is compared with: ``last`` and/or record ids."""
        if self.baselines_from_cli:
            return self.baselines
        return self.experiment_baselines.get(name) or self.baselines or (LAST,)

    def baseline_ids(self) -> list[str]:
        """Every record id given as a baseline, anywhere (not ``last``)."""
        refs = [*self.baselines, *(r for refs in self.experiment_baselines.values() for r in refs)]
        return [r for r in dict.fromkeys(refs) if r != LAST]


def _layered(global_gates: Mapping[str, Gate], own: Mapping[str, Gate]) -> dict[str, Gate]:
    gates: dict[str, Gate] = {}
    for evaluator, gate in global_gates.items():
        if gate.source not in _CLI_SOURCES:
            gates[evaluator] = gate
    gates.update(own)
    for evaluator, gate in global_gates.items():
        if gate.source in _CLI_SOURCES:
            gates[evaluator] = gate
    return gates


# -- reading the gates --------------------------------------------------------


def plan(config: Config) -> GatePlan:
    """The session's gates, from the command line and the config file.

    A malformed gate or baseline is a :class:`UsageError` naming where it was given.
    """
    file_name = config.config_path.name if config.config_path is not None else "config file"
    tables = {
        name: table
        for name, table in config.section("experiments").items()
        if isinstance(table, dict)
    }
    gates: dict[str, tuple[dict[str, Gate], dict[str, dict[str, Gate]]]] = {}
    for key in (FAIL_UNDER, MAX_REGRESSION):
        global_gates: dict[str, Gate] = {}
        top = config.settings.get(key)
        if top is not None:
            global_gates.update(_from_table(top, f"{file_name} {key}", None, key))
        given = config.options.get(key)
        if given:
            global_gates.update(_from_option(given, key))
        experiment_gates: dict[str, dict[str, Gate]] = {}
        for name, table in tables.items():
            if table.get(key) is not None:
                source = f"{file_name} [experiments.{name}] {key}"
                experiment_gates[name] = _from_table(table[key], source, name, key)
        gates[key] = global_gates, experiment_gates
    cli_baselines = _baselines(config.options.get(BASELINE), "--baseline")
    top_baselines = _baselines(config.settings.get(BASELINE), f"{file_name} baseline")
    experiment_baselines = {
        name: _baselines(table.get(BASELINE), f"{file_name} [experiments.{name}] baseline")
        for name, table in tables.items()
        if table.get(BASELINE) is not None
    }
    gate_plan = GatePlan(
        *gates[FAIL_UNDER],
        *gates[MAX_REGRESSION],
        baselines=cli_baselines or top_baselines,
        baselines_from_cli=bool(cli_baselines),
        experiment_baselines=experiment_baselines,
    )
    if cli_baselines and not gate_plan.has_regressions:
        raise UsageError(
            "--baseline says what to compare with, but no gate compares: "
            "add --max-regression EVALUATOR=DELTA (or max_regression in evalwire.toml)"
        )
    return gate_plan


def _baselines(value: Any, where: str) -> tuple[str, ...]:
    """``last`` and record ids, from an option (repeatable) or a config value."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise UsageError(f'{where} must be "last" or a recorded experiment\'s id, not {value!r}')
    refs = tuple(dict.fromkeys(i.strip() for i in items))
    if any(not r for r in refs):
        raise UsageError(f'{where} must be "last" or a recorded experiment\'s id, not {value!r}')
    return refs


def _from_table(table: Any, source: str, experiment: str | None, key: str) -> dict[str, Gate]:
    if not isinstance(table, Mapping):
        example = "{accuracy = 0.8}" if key == FAIL_UNDER else "{accuracy = 0.02}"
        raise UsageError(
            f"{source} must be a table of evaluator = "
            f"{'threshold' if key == FAIL_UNDER else 'delta'} ({key} = {example}), not {table!r}"
        )
    return {
        str(name): Gate(
            str(name), _threshold(value, f"{source}: '{name}'", kind=key), source, experiment, key
        )
        for name, value in table.items()
    }


def _from_option(given: Any, key: str = FAIL_UNDER) -> dict[str, Gate]:
    """``--fail-under`` (or ``--max-regression``) values: ``EVALUATOR=VALUE`` strings
    (or, from the Python API, a mapping or ``(evaluator, value)`` pairs)."""
    flag = "--" + key.replace("_", "-")
    items: Iterable[Any] = given.items() if isinstance(given, Mapping) else given
    if isinstance(given, str):
        items = [given]
    gates: dict[str, Gate] = {}
    for item in items:
        if isinstance(item, str):
            name, sep, value = item.rpartition("=")
            if not sep or not name.strip():
                what = "VALUE" if key == FAIL_UNDER else "DELTA"
                raise UsageError(f"{flag} expects EVALUATOR={what}, got {item!r}")
            name = name.strip()
            threshold = _threshold(value.strip(), f"{flag} {item!r}", parse=True, kind=key)
        else:
            try:
                name, value = item
            except (TypeError, ValueError):
                raise UsageError(
                    f"{key} expects EVALUATOR=VALUE or (evaluator, value), got {item!r}"
                ) from None
            name = str(name)
            threshold = _threshold(value, f"{key} {name!r}", kind=key)
        gates[name] = Gate(name, threshold, flag, kind=key)
    return gates


def _threshold(value: Any, where: str, *, parse: bool = False, kind: str = FAIL_UNDER) -> float:
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
    if kind == MAX_REGRESSION and number < 0:
        raise UsageError(f"{where}: the drop allowed must be 0 or more, not {value!r}")
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


def format_number(value: float | None, *, near: float | None = None) -> str:
    """A score for people: four significant digits, more when that would hide
    which side of ``near`` (a threshold) it falls on."""
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:.4g}"
    if near is not None and value != near and float(text) == near:
        text = repr(value)
    return text
