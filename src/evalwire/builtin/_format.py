"""How the summaries (the console's table, the Markdown page) word results:
which evaluator columns in what order, a score cell, a duration, a count.

Kept in one place so the two summaries of one session read the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from evalwire.models import ExperimentResult, ExperimentSpec, ScoreSummary

_STATUS_ORDER = ("passed", "failed", "error")


def evaluator_names(specs: Iterable[ExperimentSpec], results: list[ExperimentResult]) -> list[str]:
    """Every evaluator across experiments: declared order first, then any others."""
    names: dict[str, None] = {}
    for spec in specs:
        for name in spec.evaluators or ():
            names.setdefault(str(name), None)
    for result in results:
        for name in sorted(result.scores):
            names.setdefault(name, None)
    return list(names)


def status_counts(results: list[ExperimentResult]) -> list[tuple[str, int]]:
    """How many experiments ended in each status: passed, failed, error, then any other."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return [(status, counts[status]) for status in sorted(counts, key=_status_order)]


def _status_order(status: str) -> tuple[int, str]:
    order = _STATUS_ORDER
    return (order.index(status) if status in order else len(order), status)


def score(summary: ScoreSummary | None, dash: str) -> str:
    """A score cell: the mean to two places and any errors; ``dash`` for no score."""
    if summary is None:
        return dash
    text = f"{summary.mean:.2f}" if summary.count else dash
    if summary.errors:
        text += f" ({count(summary.errors, 'error')})"
    return text


def error_counts(result: ExperimentResult) -> list[str]:
    """``["2 task errors", "1 evaluation error"]``, leaving out the kinds that are none."""
    return plural(result.task_errors, "task error") + plural(
        result.evaluation_errors, "evaluation error"
    )


def duration(seconds: float) -> str:
    """``4.2s``, ``3m 07s`` or ``2h 05m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def count(number: int, noun: str, nouns: str | None = None) -> str:
    """``1 error``, ``2 errors``; ``nouns`` for a plural that is not ``noun`` + "s"."""
    return f"{number} {noun if number == 1 else (nouns or noun + 's')}"


def plural(number: int, noun: str, nouns: str | None = None) -> list[str]:
    """``[count(...)]``, or ``[]`` when ``number`` is 0: a part of a list that may be left out."""
    return [count(number, noun, nouns)] if number else []
