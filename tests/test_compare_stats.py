"""The statistics behind ``evalwire compare``: paired differences and their bootstrap CI.

Properties (hypothesis) pin what must hold for any scores: the interval
contains the observed mean difference, identical experiments give zero and
``[0, 0]``, swapping A and B negates everything, and a seed fixes the
interval. Examples pin the bookkeeping: matching, unmatched counts, and
regressions listed worst first.
"""

from __future__ import annotations

import math
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalwire.store.bootstrap import percentile_interval
from evalwire.store.compare import RunScores, compare, paired_bootstrap

score = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
#: (example id, score of A, score of B): a few examples, some repeated.
pairs = st.lists(
    st.tuples(st.sampled_from([f"ex{i}" for i in range(12)]), score, score),
    min_size=1,
    max_size=40,
)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
#: Pass/fail scores over many examples: few distinct differences, so the
#: bootstrap draws counts of each rather than examples one by one.
binary_pairs = st.lists(
    st.tuples(
        st.sampled_from([f"ex{i}" for i in range(300)]),
        st.sampled_from([0.0, 1.0]),
        st.sampled_from([0.0, 0.5, 1.0]),
    ),
    min_size=1,
    max_size=300,
)

# A smaller resample count keeps the properties fast; they hold for any count.
RESAMPLES = 300


@given(pairs, seeds)
@settings(max_examples=150, deadline=None)
def test_the_interval_contains_the_observed_mean_difference(
    data: list[tuple[str, float, float]], seed: int
) -> None:
    stats = paired_bootstrap(data, resamples=RESAMPLES, seed=seed)
    assert stats.delta is not None and stats.ci_low is not None and stats.ci_high is not None
    assert stats.ci_low <= stats.delta <= stats.ci_high
    assert math.isclose(stats.delta, sum(b - a for _, a, b in data) / len(data), abs_tol=1e-12)


@given(binary_pairs, seeds)
@settings(max_examples=100, deadline=None)
def test_with_few_distinct_scores_the_interval_still_contains_the_difference(
    data: list[tuple[str, float, float]], seed: int
) -> None:
    stats = paired_bootstrap(data, resamples=RESAMPLES, seed=seed)
    assert stats.delta is not None and stats.ci_low is not None and stats.ci_high is not None
    assert stats.ci_low <= stats.delta <= stats.ci_high
    backward = paired_bootstrap([(ex, b, a) for ex, a, b in data], resamples=RESAMPLES, seed=seed)
    assert (backward.ci_low, backward.ci_high) == (-stats.ci_high, -stats.ci_low)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), score), min_size=1), seeds)
@settings(max_examples=100, deadline=None)
def test_identical_scores_give_zero_delta_and_a_zero_interval(
    data: list[tuple[str, float]], seed: int
) -> None:
    stats = paired_bootstrap([(ex, s, s) for ex, s in data], resamples=RESAMPLES, seed=seed)
    assert stats.delta == 0.0
    assert (stats.ci_low, stats.ci_high) == (0.0, 0.0)
    assert stats.mean_a == stats.mean_b


@given(pairs, seeds)
@settings(max_examples=150, deadline=None)
def test_swapping_a_and_b_negates_the_delta_and_mirrors_the_interval(
    data: list[tuple[str, float, float]], seed: int
) -> None:
    forward = paired_bootstrap(data, resamples=RESAMPLES, seed=seed)
    backward = paired_bootstrap([(ex, b, a) for ex, a, b in data], resamples=RESAMPLES, seed=seed)
    assert forward.delta == -backward.delta  # type: ignore[operator]
    assert forward.ci_low == -backward.ci_high  # type: ignore[operator]
    assert forward.ci_high == -backward.ci_low  # type: ignore[operator]
    assert (forward.mean_a, forward.mean_b) == (backward.mean_b, backward.mean_a)


@given(pairs, seeds)
@settings(max_examples=50, deadline=None)
def test_the_same_seed_gives_the_same_interval(
    data: list[tuple[str, float, float]], seed: int
) -> None:
    first = paired_bootstrap(data, resamples=RESAMPLES, seed=seed)
    again = paired_bootstrap(list(data), resamples=RESAMPLES, seed=seed)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)


def test_the_default_is_2000_resamples_at_95_percent_and_reproducible() -> None:
    data = [(f"ex{i}", 1.0, 1.0 if i % 3 else 0.0) for i in range(30)]
    stats = paired_bootstrap(data)
    assert stats.pairs == 30 and stats.examples == 30
    assert stats.delta == -10 / 30
    assert stats.ci_low is not None and stats.ci_high is not None
    assert stats.ci_low < stats.delta < stats.ci_high < 0
    assert paired_bootstrap(data) == stats


def test_drawing_examples_and_drawing_counts_give_the_same_interval() -> None:
    rng = random.Random(5)
    sums = [float(rng.random() < 0.3) - float(rng.random() < 0.4) for _ in range(600)]
    counts = [1] * len(sums)
    by_clusters = percentile_interval(
        sums, counts, resamples=4000, confidence=0.95, seed=1, method="clusters"
    )
    by_counts = percentile_interval(
        sums, counts, resamples=4000, confidence=0.95, seed=1, method="counts"
    )
    assert by_clusters == pytest.approx(by_counts, abs=0.01)


def test_a_million_pass_fail_examples_compare_in_seconds() -> None:
    data = [(f"ex{i}", float(i % 5 != 0), float(i % 4 != 0)) for i in range(1_000_000)]
    started = time.perf_counter()
    stats = paired_bootstrap(data)
    assert time.perf_counter() - started < 60  # drawing examples one by one takes hours
    assert stats.delta == pytest.approx(0.75 - 0.8)
    assert stats.ci_low is not None and stats.ci_high is not None
    assert stats.ci_low < -0.05 < stats.ci_high < 0


def test_repetitions_of_one_example_are_resampled_together() -> None:
    # One example alone: every resample is that example, whatever its spread.
    stats = paired_bootstrap([("only", 0.0, 1.0), ("only", 1.0, 0.0), ("only", 0.0, 0.5)])
    assert stats.examples == 1 and stats.pairs == 3
    assert stats.ci_low == stats.ci_high == stats.delta == 0.5 / 3


def test_no_pairs_means_no_statistics() -> None:
    stats = paired_bootstrap([])
    assert stats.pairs == 0
    assert stats.delta is None and stats.ci_low is None


# -- comparing two experiments' runs --------------------------------------------


def runs(scores: dict[str, float], repetition: int = 1) -> dict[tuple[str, int], RunScores]:
    return {(ex, repetition): RunScores(scores={"acc": s}) for ex, s in scores.items()}


def test_compare_matches_runs_by_example_and_counts_the_unmatched() -> None:
    a = runs({"x": 1.0, "y": 1.0, "gone": 1.0})
    b = runs({"x": 1.0, "y": 0.0, "new": 0.0})
    result = compare(a, b)
    [stats] = result.evaluators
    assert stats.pairs == 2 and stats.delta == -0.5
    assert (result.only_a, result.only_b) == (1, 1)
    assert result.matched_examples == 2
    assert [c.example_id for c in result.regressed] == ["y"]
    assert result.improved == []


def test_compare_lists_the_worst_regression_first() -> None:
    a = runs({"small": 1.0, "big": 1.0, "up": 0.0, "same": 0.5})
    b = runs({"small": 0.75, "big": 0.0, "up": 1.0, "same": 0.5})
    result = compare(a, b)
    assert [(c.example_id, c.delta) for c in result.regressed] == [("big", -1.0), ("small", -0.25)]
    assert [(c.example_id, c.delta) for c in result.improved] == [("up", 1.0)]


def test_a_new_task_error_is_a_regression_and_a_fixed_one_an_improvement() -> None:
    a = {("x", 1): RunScores(scores={"acc": 1.0}), ("y", 1): RunScores(error="boom")}
    b = {("x", 1): RunScores(error="ValueError: no"), ("y", 1): RunScores(scores={"acc": 1.0})}
    result = compare(a, b)
    assert [(c.example_id, c.evaluator) for c in result.regressed] == [("x", None)]
    assert "ValueError: no" in (result.regressed[0].note or "")
    assert [c.example_id for c in result.improved] == ["y"]
    [stats] = result.evaluators
    assert stats.pairs == 0  # neither example was scored on both sides


def test_swapping_the_experiments_swaps_regressions_and_improvements() -> None:
    a = runs({"p": 1.0, "q": 0.0, "r": 0.5})
    b = runs({"p": 0.0, "q": 1.0, "r": 0.5})
    forward, backward = compare(a, b), compare(b, a)
    assert [c.example_id for c in forward.regressed] == [c.example_id for c in backward.improved]
    assert [c.example_id for c in forward.improved] == [c.example_id for c in backward.regressed]
    assert forward.evaluators[0].delta == -backward.evaluators[0].delta  # type: ignore[operator]
