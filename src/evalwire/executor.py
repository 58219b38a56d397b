"""What an executor is: where and when units of work run.

The core owns what a unit is (:func:`evalwire.unit.run_unit`); an executor
only schedules units, keeps a bounded number in flight, and yields finished
runs as they complete. Units come from an iterator, so an executor must pull
them lazily: a dataset of a million examples is never materialized.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from evalwire.models import Example, Run
    from evalwire.unit import Work


class Unit(NamedTuple):
    """One (example, repetition) to run; ``index`` is the example's position."""

    index: int
    example: Example
    repetition: int


@runtime_checkable
class Executor(Protocol):
    """Runs units of work. Made by ``evalwire_make_executor``; one per session.

    ``execute`` may be called from several threads at once (one per
    experiment running concurrently). If ``units`` raises (a malformed row
    deep in a streamed file), the executor stops pulling, lets the units in
    flight finish and yields them, then re-raises.
    """

    def execute(self, work: Work, units: Iterable[Unit]) -> Iterator[Run]:
        """Run every unit with ``work`` and yield each run as it completes."""
        ...

    def close(self) -> None:
        """Release threads, loops, clusters. Called once at the end of a session."""
        ...


def iter_units(examples: Iterable[Example], repetitions: int) -> Iterator[Unit]:
    """Every (example, repetition) pair, example by example, repetitions numbered from 1."""
    for index, example in enumerate(examples):
        for repetition in range(1, repetitions + 1):
            yield Unit(index, example, repetition)
