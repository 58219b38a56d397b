"""Calling evaluators the way evalwire does: by parameter name, sync or async.

Composite evaluators call their children with only the arguments each child
declares, read from its signature once when the composite is built.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from evalwire.evaluators._evaluation import show
from evalwire.models import Evaluation

#: The arguments evalwire binds by name; ``reference`` is Phoenix's name for ``expected``.
ARGUMENT_NAMES = ("output", "expected", "reference", "input", "metadata", "example")


class ChildError(Exception):
    """A child evaluator raised or reported an error; the composite reports it as its own."""


@dataclass(frozen=True)
class Child:
    """An evaluator inside a composite, with what it needs to be called."""

    fn: Callable[..., Any]
    name: str
    params: tuple[str, ...]
    is_async: bool

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Child:
        """Inspect ``fn`` once; raise :class:`ValueError` if evalwire could not call it."""
        if not callable(fn):
            raise ValueError(f"an evaluator must be callable, not {show(fn)}")
        name = getattr(fn, "__name__", None) or type(fn).__name__
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot read the parameters of evaluator {name!r}: {exc}") from None
        params: list[str] = []
        for param in signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                params.extend(p for p in ARGUMENT_NAMES if p not in params)
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            elif (
                param.name in ARGUMENT_NAMES and param.kind is not inspect.Parameter.POSITIONAL_ONLY
            ):
                params.append(param.name)
            elif param.default is inspect.Parameter.empty:
                raise ValueError(
                    f"evaluator {name!r} requires parameter {param.name!r}, which evalwire cannot "
                    f"pass by name; name its parameters from {', '.join(ARGUMENT_NAMES)}"
                )
        call = getattr(fn, "__call__", None)  # noqa: B004 - async __call__ on an object counts too
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
        return cls(fn=fn, name=name, params=tuple(params), is_async=is_async)

    def call(self, arguments: Mapping[str, Any]) -> Any:
        """Call the child with the arguments it declares (a coroutine if it is async)."""
        return self.fn(**{p: arguments[p] for p in self.params})


def arguments(
    output: Any,
    expected: Mapping[str, Any] | None,
    input: Mapping[str, Any] | None,  # noqa: A002 - evalwire binds this name
    metadata: Mapping[str, Any] | None,
    example: Any,
) -> dict[str, Any]:
    """Everything a child may ask for, by name."""
    return {
        "output": output,
        "expected": expected,
        "reference": expected,
        "input": input,
        "metadata": metadata,
        "example": example,
    }


def score_of(child: Child, result: Any) -> tuple[float, Evaluation | None]:
    """A child's result as a score in [0, 1] (and the Evaluation, when it gave one).

    Besides :class:`Evaluation`, plain results that evalwire accepts from
    evaluators work too: a bool, a number, or a ``(score, label, ...)`` tuple.
    Raises :class:`ChildError` for an error or a result that is not a score.
    """
    evaluation = result if isinstance(result, Evaluation) else None
    if evaluation is not None:
        if evaluation.error is not None:
            raise ChildError(f"{child.name}: {evaluation.error}")
        value: Any = evaluation.score
    elif isinstance(result, tuple) and result:
        value = result[0]
    else:
        value = result
    if isinstance(value, bool):
        return (1.0 if value else 0.0), evaluation
    if not isinstance(value, (int, float)) or math.isnan(value):
        raise ChildError(f"{child.name} returned no score: {show(result)}")
    if not 0.0 <= value <= 1.0:
        raise ChildError(f"{child.name} returned score {value!r}, outside [0, 1]")
    return float(value), evaluation


def unexpected_awaitable(child: Child, result: Any) -> None:
    """Refuse an awaitable from a child that looked synchronous when the composite was built."""
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if callable(close):
            close()  # so Python does not warn that the coroutine was never awaited
        raise ChildError(
            f"{child.name} returned an awaitable but is not an async function; "
            "define it with `async def` so the composite is built async"
        )
