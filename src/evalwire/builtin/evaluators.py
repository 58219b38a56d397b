"""The ``evaluators`` plugin: the built-in evaluator factories, by their config names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalwire.plugins import hookimpl


@hookimpl(trylast=True)
def evalwire_register_evaluators(register: Callable[[str, Callable[..., Any]], None]) -> None:
    from evalwire.evaluators import BUILTIN_EVALUATORS

    for name, factory in BUILTIN_EVALUATORS.items():
        register(name, factory)
