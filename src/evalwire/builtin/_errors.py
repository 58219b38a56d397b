"""The error messages reporters keep from runs: the first few distinct ones, each
with the example that raised it first.

``evalwire_run_complete`` may be called many thousands of times a second, and
most runs raise nothing: noting a run costs a few attribute reads until an
error turns up, and one length check once there is no more room.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from evalwire.models import Run


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
