"""Percentile bootstrap of a ratio of sums, resampling clusters, in pure Python.

Each cluster (an example) contributes the sum of its paired differences and
the number of its pairs; a resample draws as many clusters as there are,
with replacement, and its statistic is the sum of their sums over the sum of
their counts (the mean difference over all their pairs).

Two ways to draw, chosen by the shape of the data, both the same bootstrap:

- *clusters*: draw the clusters themselves (``random.choices``); the cost is
  the number of clusters per resample.
- *counts*: when few distinct (sum, count) values occur, as with pass/fail
  scores, draw how many clusters of each value a resample holds (a
  multinomial, as a chain of binomials); the cost is the number of distinct
  values per resample, so 2000 resamples of a million examples take
  milliseconds.

Values are taken in the order they first occur, never sorted, so negating
every difference draws the same resamples and mirrors the interval exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

#: Draw counts when clusters outnumber distinct values at least this many times.
_COUNTS_WHEN = 8


def percentile_interval(
    sums: Sequence[float],
    counts: Sequence[int],
    *,
    resamples: int,
    confidence: float,
    seed: int,
    method: str | None = None,
) -> tuple[float, float]:
    """The ``confidence`` percentile interval of ``Σ sums / Σ counts`` over resamples.

    ``method`` forces ``"clusters"`` or ``"counts"`` (see the module
    docstring); by default the cheaper one is used.
    """
    rng = random.Random(seed)
    distinct: dict[tuple[float, int], int] = {}
    for key in zip(sums, counts, strict=True):
        distinct[key] = distinct.get(key, 0) + 1
    if method is None:
        method = "counts" if len(distinct) * _COUNTS_WHEN <= len(sums) else "clusters"
    if method == "counts":
        stats = _by_counts(distinct, len(sums), resamples, rng)
    else:
        stats = _by_clusters(sums, counts, resamples, rng)
    stats.sort()
    tail = (1.0 - confidence) / 2.0
    low = stats[math.floor(tail * resamples)]
    high = stats[max(0, math.ceil((1.0 - tail) * resamples) - 1)]
    return low, high


def _by_clusters(
    sums: Sequence[float], counts: Sequence[int], resamples: int, rng: random.Random
) -> list[float]:
    k = len(sums)
    fsum = math.fsum
    stats: list[float] = []
    if len(set(counts)) == 1:
        # Every cluster has as many pairs (the usual case): the denominator
        # is fixed, so draw the sums alone.
        total = counts[0] * k
        for _ in range(resamples):
            stats.append(fsum(rng.choices(sums, k=k)) / total)
        return stats
    population = range(k)
    for _ in range(resamples):
        chosen = rng.choices(population, k=k)
        stats.append(fsum([sums[i] for i in chosen]) / sum([counts[i] for i in chosen]))
    return stats


def _by_counts(
    distinct: dict[tuple[float, int], int], k: int, resamples: int, rng: random.Random
) -> list[float]:
    values = list(distinct)
    frequencies = list(distinct.values())
    stats: list[float] = []
    for _ in range(resamples):
        left, mass = k, k
        total: list[float] = []
        pairs = 0
        for (value, count), frequency in zip(values, frequencies, strict=True):
            drawn = left if frequency == mass else _binomial(left, frequency / mass, rng)
            if drawn:
                total.append(drawn * value)
                pairs += drawn * count
            left -= drawn
            mass -= frequency
            if not left:
                break
        stats.append(math.fsum(total) / pairs)
    return stats


def _binomial(n: int, p: float, rng: random.Random) -> int:
    """A Binomial(n, p) variate: gap counting when n·p is small, else BTRS.

    BTRS is Hörmann's transformed rejection with squeeze (1993), the method
    ``random.binomialvariate`` uses from Python 3.12 on.
    """
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - _binomial(n, 1.0 - p, rng)
    random_ = rng.random
    if n * p < 10.0:
        # Jump from success to success by geometric gaps until past n.
        log_q = math.log1p(-p)
        successes = position = 0
        while True:
            position += math.floor(math.log(1.0 - random_()) / log_q) + 1
            if position > n:
                return successes
            successes += 1
    q = 1.0 - p
    spq = math.sqrt(n * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = math.log(p / q)
    m = math.floor((n + 1) * p)
    h = math.lgamma(m + 1) + math.lgamma(n - m + 1)
    while True:
        u = random_() - 0.5
        v = random_()
        us = 0.5 - abs(u)
        if us <= 0.0 or v <= 0.0:
            continue
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        if us >= 0.07 and v <= vr:
            return k
        v = math.log(v * alpha / (a / (us * us) + b))
        if v <= h - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - m) * lpq:
            return k
