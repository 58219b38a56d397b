"""Calling user code from evaluators the way evalwire calls it.

A composite's child is bound by parameter name with evalwire's own binding
(:func:`evalwire.binding.bind`), once when the composite is built, and its
result is read with evalwire's own normalization
(:func:`evalwire.normalize.to_evaluation`): a child works in a composite
as it would on its own, except that it cannot ask for ``params``.
:func:`discard_awaitable` guards the sync paths (composites, LLM judges)
against a callable that looked synchronous but returned a coroutine.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evalwire.binding import EVALUATOR_PARAMETERS, Binding, bind, is_async
from evalwire.errors import AdaptError
from evalwire.evaluators._evaluation import show
from evalwire.models import Evaluation, Example
from evalwire.normalize import to_evaluation

#: What a child may ask for: a composite is not given the experiment's params to pass on.
CHILD_PARAMETERS = tuple(name for name in EVALUATOR_PARAMETERS if name != "params")


class ChildError(Exception):
    """A child evaluator raised or reported an error; the composite reports it as its own."""


@dataclass(frozen=True)
class Child:
    """An evaluator inside a composite, with what it needs to be called."""

    fn: Callable[..., Any]
    name: str
    binding: Binding
    is_async: bool

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Child:
        """Inspect ``fn`` once; raise :class:`ValueError` if evalwire could not call it."""
        if not callable(fn):
            raise ValueError(f"an evaluator must be callable, not {show(fn)}")
        name = getattr(fn, "__name__", None) or type(fn).__name__
        try:
            binding = bind(fn, CHILD_PARAMETERS, "output", f"evaluator {name!r}")
        except AdaptError as exc:  # raised to whoever builds the composite, as a bad argument
            raise ValueError(str(exc)) from None
        return cls(fn=fn, name=name, binding=binding, is_async=is_async(fn))

    def call(self, example: Example, output: Any) -> Any:
        """Call the child with the arguments it declares (a coroutine if it is async)."""
        args, kwargs = self.binding.arguments(example, output)
        return self.fn(*args, **kwargs)


def example_of(expected: Any, input: Any, metadata: Any, example: Any) -> Example:  # noqa: A002
    """The example a composite's children are bound from.

    evalwire passes the :class:`Example` itself; a composite called by hand
    may be given only its parts, which are put together here (as given: an
    unreadable ``expected`` is the child's to report).
    """
    if isinstance(example, Example):
        return example
    return Example(id="", input=input or {}, expected=expected or {}, metadata=metadata or {})


def score_of(child: Child, result: Any) -> tuple[float, Evaluation]:
    """A child's result as a score in [0, 1], and the Evaluation evalwire makes of it.

    A child may return anything evalwire accepts from an evaluator (see
    :func:`~evalwire.normalize.to_evaluation`). Raises :class:`ChildError`
    for an error, or a result without a score in [0, 1].
    """
    try:
        evaluation = to_evaluation(result, child.name)
    except TypeError:  # a (score, ...) tuple or dict whose score is not a number
        raise ChildError(f"{child.name} returned no score: {show(result)}") from None
    if isinstance(result, Evaluation) and evaluation.error is not None:
        raise ChildError(f"{child.name}: {evaluation.error}")
    score = evaluation.score
    # A result evalwire cannot read (None, a list, ...) comes back as an error with no score.
    if score is None or math.isnan(score):
        raise ChildError(f"{child.name} returned no score: {show(result)}")
    if not 0.0 <= score <= 1.0:
        raise ChildError(f"{child.name} returned score {score!r}, outside [0, 1]")
    return score, evaluation


def discard_awaitable(value: Any) -> bool:
    """Whether ``value`` is awaitable; if so it is closed, because it will never be awaited."""
    if not inspect.isawaitable(value):
        return False
    close = getattr(value, "close", None)
    if callable(close):
        close()  # so Python does not warn that the coroutine was never awaited
    return True
