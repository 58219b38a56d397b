"""Tracing a unit's task: the protocol a tracer plugin implements.

A plugin that wants each task call inside a span of its own answers
``evalwire_make_tracer(experiment)`` with a :class:`Tracer`. The unit of work
then calls the task (every attempt, retries included) inside
``tracer.task_span(example, repetition)``: the span is the current one while
the task runs, in the task's own thread too, so spans the task's code makes
(an instrumented LLM client, say) become its children. When the task is done
the unit calls ``span.finish(output, error)`` and copies ``span.trace_id`` to
the :class:`~evalwire.models.Run`, so a recorder can link the run to its trace.

Tracing is best effort: a tracer must not raise, and it is not shipped to
other processes (an executor that pickles the work may find it gone).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from evalwire.models import Example

__all__ = ["TaskSpan", "Tracer"]


class TaskSpan(Protocol):
    """One task call's span, as the unit of work sees it."""

    #: The trace's id (32 lowercase hex digits), or ``None`` if there is none.
    trace_id: str | None

    def finish(self, output: Any, error: BaseException | None) -> None:
        """Note the task's output, or the error it ended with, before the span ends."""


class Tracer(Protocol):
    """Opens a span around each task call of one experiment."""

    def task_span(self, example: Example, repetition: int) -> AbstractContextManager[TaskSpan]:
        """A span, current while it is open, around every attempt at one unit's task."""
