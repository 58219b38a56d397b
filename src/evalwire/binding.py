"""Binding a task's or evaluator's parameters by name, as Phoenix does.

The signature is read once, when the callable is adapted; each call then only
looks up the values it asked for.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from evalwire.errors import AdaptError
from evalwire.models import Example


def is_async(fn: Any) -> bool:
    """Whether calling ``fn`` returns a coroutine (functions, partials, callable objects)."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - a callable object's method
    return call is not None and inspect.iscoroutinefunction(call)


Getter = Callable[[Example, Any, Mapping[str, Any]], Any]

#: What each parameter name receives: (example, output, params) -> value.
SOURCES: dict[str, Getter] = {
    "input": lambda ex, out, params: ex.input,
    "expected": lambda ex, out, params: ex.expected,
    "reference": lambda ex, out, params: ex.expected,
    "metadata": lambda ex, out, params: ex.metadata,
    "example": lambda ex, out, params: ex,
    "params": lambda ex, out, params: params,
    "output": lambda ex, out, params: out,
}
TASK_PARAMETERS = ("input", "expected", "reference", "metadata", "example", "params")
EVALUATOR_PARAMETERS = ("output", "input", "expected", "reference", "metadata", "example", "params")


class Binding:
    """How to call one callable: positional getters, then keyword getters."""

    __slots__ = ("positional", "keyword")

    def __init__(self, positional: list[Getter], keyword: dict[str, Getter]) -> None:
        self.positional = tuple(positional)
        self.keyword = keyword

    def arguments(
        self, example: Example, output: Any = None, params: Mapping[str, Any] = {}
    ) -> tuple[list[Any], dict[str, Any]]:
        args = [g(example, output, params) for g in self.positional]
        kwargs = {k: g(example, output, params) for k, g in self.keyword.items()}
        return args, kwargs


def bind(fn: Callable[..., Any], allowed: tuple[str, ...], sole: str, what: str) -> Binding:
    """Plan how to call ``fn`` with values named in ``allowed``.

    A callable with a single parameter whose name is not in ``allowed`` gets
    ``sole`` (the input for a task, the output for an evaluator). Parameters
    with defaults and ``*args``/``**kwargs`` are left alone. Any other
    parameter is an :class:`AdaptError` naming ``what`` and the parameter.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise AdaptError(f"{what} is not a callable evalwire can inspect: {exc}") from None
    params = [
        p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if len(params) == 1 and params[0].name not in allowed:
        only = params[0]
        getter = SOURCES[sole]
        if only.kind is only.POSITIONAL_ONLY or only.default is only.empty:
            if only.kind is only.KEYWORD_ONLY:
                return Binding([], {only.name: getter})
            return Binding([getter], {})
    positional: list[Getter] = []
    keyword: dict[str, Getter] = {}
    for p in params:
        if p.name in allowed:
            if p.kind is p.POSITIONAL_ONLY:
                positional.append(SOURCES[p.name])
            else:
                keyword[p.name] = SOURCES[p.name]
        elif p.default is p.empty:
            raise AdaptError(
                f"{what} takes parameter '{p.name}', which evalwire cannot supply; "
                f"parameters are bound by name from: {', '.join(allowed)}"
            )
    return Binding(positional, keyword)
