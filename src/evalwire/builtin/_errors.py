"""The error messages reporters keep from runs: the first few distinct ones, each
with the example that raised it first.

``evalwire_run_complete`` may be called many thousands of times a second, and
most runs raise nothing: noting a run costs a few attribute reads until an
error turns up, and one length check once there is no more room.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from evalwire.models import Run
    from evalwire.session import Experiment, Session

T = TypeVar("T")


@dataclass(eq=False)
class ErrorReport(Generic[T]):
    """A file reporter's session: when it started, and each experiment's errors as
    ``make()`` collects them (by experiment id). The JUnit and Markdown reporters
    keep one in ``config.stash`` under their name, from session start to finish.
    """

    started_at: float
    make: Callable[[], T]
    errors: dict[str, T] = field(default_factory=dict)

    @classmethod
    def start(cls, session: Session, name: str, option: str, make: Callable[[], T]) -> None:
        """Begin a report under ``name`` when the reporter's ``option`` is given."""
        config = session.config
        config.stash.pop(name, None)
        if config.getoption(option) is not None:  # the path is checked when it is written
            config.stash[name] = cls(session.started_at or time.time(), make)

    @staticmethod
    def follow(experiment: Experiment, name: str) -> None:
        """Give ``experiment`` (in its stash, under ``name``) the collector of its errors."""
        report: Any = experiment.config.stash.get(name)
        if isinstance(report, ErrorReport):
            found = report.errors.get(experiment.id)
            if found is None:
                found = report.errors[experiment.id] = report.make()
            experiment.stash[name] = found


class DistinctErrors:
    """Up to ``limit`` distinct error messages, in the order first heard.

    ``messages`` maps each message to the id of the first example that raised it.
    """

    __slots__ = ("limit", "messages")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.messages: dict[str, str] = {}

    def add(self, message: str, example_id: str) -> None:
        """Keep ``message`` if it is new and there is room."""
        messages = self.messages
        if len(messages) < self.limit:
            messages.setdefault(message, example_id)

    def add_run(self, run: Run, label: Callable[[str | None, str], str]) -> None:
        """Keep the task's error and each evaluation's, worded by ``label(evaluator,
        error)`` (``evaluator`` is ``None`` for the task's own error)."""
        if len(self.messages) >= self.limit:
            return
        if run.error is not None:
            self.add(label(None, run.error), run.example.id)
        for evaluation in run.evaluations:
            if evaluation.error is not None:
                self.add(label(evaluation.name, evaluation.error), run.example.id)


def clip(message: str, limit: int) -> str:
    """``message``, cut to ``limit`` characters (ending in "...") if it is longer."""
    if len(message) <= limit:
        return message
    return message[: limit - 3] + "..."
