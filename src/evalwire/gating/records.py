"""The records of quality gates: what a gate asks for and how it came out.

:class:`Gate` is one threshold as given, :class:`GatePlan` every gate of a
session, :class:`GateResult` a gate checked against one experiment; all plain
frozen records. :mod:`evalwire.gates` describes the gates and re-exports these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from evalwire.gating.names import FAIL_UNDER, LAST, MAX_REGRESSION, MINUS

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


def format_number(value: float | None, *, near: float | None = None) -> str:
    """A score for people: four significant digits, more when that would hide
    which side of ``near`` (a threshold) it falls on."""
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:.4g}"
    if near is not None and value != near and float(text) == near:
        text = repr(value)
    return text
