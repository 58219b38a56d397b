"""Building the :class:`~evalwire.models.Evaluation` every built-in evaluator returns."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from evalwire.evaluators._expected import ExpectedValueError
from evalwire.models import Evaluation

F = TypeVar("F", bound=Callable[..., Any])

#: Longest explanation an evaluator writes; reports show it in one cell.
EXPLANATION_LIMIT = 500
#: Longest rendering of one value inside an explanation.
VALUE_LIMIT = 80

MATCH_LABELS = ("match", "no_match")
PASS_LABELS = ("pass", "fail")


def clip(text: str, limit: int = EXPLANATION_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value: Any, limit: int = VALUE_LIMIT) -> str:
    """A short, unambiguous rendering of a value for explanations (its repr, clipped)."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not turn a verdict into a crash
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


def verdict(
    name: str,
    passed: bool,
    explanation: str | None = None,
    *,
    labels: tuple[str, str] = MATCH_LABELS,
    metadata: dict[str, Any] | None = None,
) -> Evaluation:
    """A pass/fail evaluation: score 1.0 or 0.0 with the matching label.

    ``explanation`` is kept only for a failure: a pass needs no excuse.
    """
    return Evaluation(
        name=name,
        score=1.0 if passed else 0.0,
        label=labels[0] if passed else labels[1],
        explanation=None if passed or explanation is None else clip(explanation),
        metadata=metadata or {},
    )


def graded(
    name: str,
    score: float,
    explanation: str | None = None,
    *,
    label: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Evaluation:
    """An evaluation with a score between 0 and 1 (clamped against rounding)."""
    return Evaluation(
        name=name,
        score=min(1.0, max(0.0, score)),
        label=label,
        explanation=None if explanation is None else clip(explanation),
        metadata=metadata or {},
    )


def no_output(name: str, label: str | None = None) -> Evaluation:
    """The evaluation of a run whose output is ``None``: a zero that says why."""
    return Evaluation(name=name, score=0.0, label=label, explanation="output is None")


def failed(name: str, reason: str, *, annotator_kind: str = "CODE") -> Evaluation:
    """An evaluation that could not be made; ``reason`` says why."""
    return Evaluation(name=name, error=clip(reason), annotator_kind=annotator_kind)


def evaluator(name: str, *, annotator_kind: str = "CODE") -> Callable[[F], F]:
    """Name an evaluator function and report unreadable expected values as errors.

    The returned function keeps the wrapped one's signature, because evalwire
    binds evaluator arguments by parameter name.
    """

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[..., Awaitable[Evaluation]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Evaluation:
                try:
                    return await async_fn(*args, **kwargs)
                except ExpectedValueError as exc:
                    return failed(name, str(exc), annotator_kind=annotator_kind)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Evaluation:
                try:
                    return cast(Evaluation, fn(*args, **kwargs))
                except ExpectedValueError as exc:
                    return failed(name, str(exc), annotator_kind=annotator_kind)

            wrapper = sync_wrapper
        wrapper.__name__ = name
        wrapper.__qualname__ = name
        return cast(F, wrapper)

    return decorate
