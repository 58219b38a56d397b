"""The statistics behind ``evalwire compare``: paired differences with a bootstrap CI.

Two experiments are compared run by run: runs are matched by
``(example id, repetition)``, so experiments on different versions of a
dataset still compare on the examples they share (the rest are counted as
unmatched). For each evaluator the difference is ``B - A`` on the matched
runs both scored, and its 95% confidence interval comes from a percentile
bootstrap over *examples* (the repetitions of one example move together,
because they are not independent), 2000 resamples, seeded so the same two
experiments always give the same interval.

Pure functions on plain data; nothing here touches the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from evalwire.store.bootstrap import percentile_interval

RESAMPLES = 2000
CONFIDENCE = 0.95

#: A run's identity across experiments: (example id, repetition).
Key = tuple[str, int]


@dataclass(frozen=True)
class RunScores:
    """What comparison needs of one run: its task error and each evaluator's score.

    A score is ``None`` when the evaluator gave no number (it raised, or gave
    only a label); ``errors`` names the evaluators that raised.
    """

    error: str | None = None
    scores: Mapping[str, float | None] = field(default_factory=dict)
    errors: AbstractSet[str] = frozenset()


@dataclass(frozen=True)
class PairedStats:
    """One evaluator's paired comparison: means on the matched runs, ``B - A`` and its CI."""

    evaluator: str
    pairs: int
    examples: int
    mean_a: float | None
    mean_b: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluator": self.evaluator,
            "pairs": self.pairs,
            "examples": self.examples,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "delta": self.delta,
            "ci": None if self.ci_low is None else [self.ci_low, self.ci_high],
        }


@dataclass(frozen=True)
class Change:
    """One example whose score moved (or that newly failed, or was fixed)."""

    example_id: str
    evaluator: str | None
    a: float | None
    b: float | None
    delta: float | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "evaluator": self.evaluator,
            "a": self.a,
            "b": self.b,
            "delta": self.delta,
            "note": self.note,
        }


@dataclass(frozen=True)
class Comparison:
    """Everything ``evalwire compare`` reports."""

    evaluators: list[PairedStats]
    regressed: list[Change]
    improved: list[Change]
    matched_runs: int
    matched_examples: int
    only_a: int
    only_b: int
    unmatched_runs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluators": [s.to_dict() for s in self.evaluators],
            "regressed": [c.to_dict() for c in self.regressed],
            "improved": [c.to_dict() for c in self.improved],
            "matched_runs": self.matched_runs,
            "matched_examples": self.matched_examples,
            "unmatched_examples": {"only_a": self.only_a, "only_b": self.only_b},
            "unmatched_runs": self.unmatched_runs,
        }


def paired_bootstrap(
    pairs: Iterable[tuple[str, float, float]],
    *,
    evaluator: str = "",
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> PairedStats:
    """Mean of ``b - a`` over ``(cluster, a, b)`` pairs, with a percentile bootstrap CI.

    Clusters (examples) are resampled with replacement; each resample's
    statistic is the mean difference over all pairs of the chosen clusters.
    Sums are exact (:func:`math.fsum`), so the statistic of a resample does
    not depend on the order of its pairs, and swapping ``a`` and ``b``
    negates every number exactly.
    """
    clusters: dict[str, list[float]] = {}
    a_values: list[float] = []
    b_values: list[float] = []
    for cluster, a, b in pairs:
        clusters.setdefault(cluster, []).append(b - a)
        a_values.append(a)
        b_values.append(b)
    n = len(a_values)
    if n == 0:
        return PairedStats(evaluator, 0, 0, None, None, None, None, None)
    sums = [math.fsum(diffs) for diffs in clusters.values()]
    counts = [len(diffs) for diffs in clusters.values()]
    delta = math.fsum(sums) / n
    low, high = percentile_interval(
        sums, counts, resamples=resamples, confidence=confidence, seed=seed
    )
    # Adding 0.0 turns a negative zero (a difference of identical sums, negated)
    # into a plain one, so no "-0.000" is ever printed.
    delta, low, high = delta + 0.0, low + 0.0, high + 0.0
    return PairedStats(
        evaluator,
        n,
        len(clusters),
        math.fsum(a_values) / n,
        math.fsum(b_values) / n,
        delta,
        low,
        high,
    )


def compare(
    a: Mapping[Key, RunScores],
    b: Mapping[Key, RunScores],
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Comparison:
    """Compare experiment B against A, run by run; see the module docstring."""
    matched = sorted(a.keys() & b.keys())
    a_examples = {key[0] for key in a}
    b_examples = {key[0] for key in b}
    evaluators = sorted({name for runs in (a, b) for r in runs.values() for name in r.scores})
    stats = []
    for name in evaluators:
        pairs = [
            (key[0], sa, sb)
            for key in matched
            if (sa := a[key].scores.get(name)) is not None
            and (sb := b[key].scores.get(name)) is not None
        ]
        stats.append(
            paired_bootstrap(
                pairs, evaluator=name, resamples=resamples, confidence=confidence, seed=seed
            )
        )
    regressed, improved = _changes(a, b, matched, evaluators)
    return Comparison(
        evaluators=stats,
        regressed=regressed,
        improved=improved,
        matched_runs=len(matched),
        matched_examples=len({key[0] for key in matched}),
        only_a=len(a_examples - b_examples),
        only_b=len(b_examples - a_examples),
        unmatched_runs=len(a.keys() ^ b.keys()),
    )


def _changes(
    a: Mapping[Key, RunScores],
    b: Mapping[Key, RunScores],
    matched: list[Key],
    evaluators: list[str],
) -> tuple[list[Change], list[Change]]:
    """Per example and evaluator, the mean score over matched repetitions, A vs B."""
    scores: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    broke: dict[str, str] = {}
    fixed: dict[str, str] = {}
    for key in matched:
        ra, rb = a[key], b[key]
        example = key[0]
        if rb.error is not None and ra.error is None:
            broke.setdefault(example, rb.error)
        elif ra.error is not None and rb.error is None:
            fixed.setdefault(example, ra.error)
        for name in evaluators:
            sa, sb = ra.scores.get(name), rb.scores.get(name)
            if sa is not None and sb is not None:
                pair = scores.setdefault((example, name), ([], []))
                pair[0].append(sa)
                pair[1].append(sb)
    regressed = [
        Change(ex, None, None, None, None, f"task error: {why}")
        for ex, why in sorted(broke.items())
    ]
    improved = [
        Change(ex, None, None, None, None, f"task error fixed (was: {why})")
        for ex, why in sorted(fixed.items())
    ]
    moved: list[Change] = []
    for (example, name), (xs, ys) in scores.items():
        mean_a, mean_b = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
        if mean_a != mean_b:
            moved.append(Change(example, name, mean_a, mean_b, mean_b - mean_a))
    # Worst first: the biggest drop leads the regressions, the biggest gain the improvements.
    regressed += sorted(
        (c for c in moved if (c.delta or 0.0) < 0),
        key=lambda c: (c.delta, c.example_id, c.evaluator),
    )
    improved += sorted(
        (c for c in moved if (c.delta or 0.0) > 0),
        key=lambda c: (-(c.delta or 0.0), c.example_id, c.evaluator),
    )
    return regressed, improved
