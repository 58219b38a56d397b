"""evalwire: run evaluation experiments on LLM-powered code, with plugins for every stage.

The public names are imported lazily, so ``import evalwire`` (and
``evalwire --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalwire.models import Dataset, Evaluation, Example, ExperimentResult, ExperimentSpec, Run
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from evalwire.api import async_run_experiment, run_experiment
    from evalwire.runner import ExperimentRunner

__all__ = [
    "Dataset",
    "Evaluation",
    "Example",
    "ExperimentResult",
    "ExperimentRunner",
    "ExperimentSpec",
    "Run",
    "async_run_experiment",
    "hookimpl",
    "run_experiment",
]

_LAZY = {
    "ExperimentRunner": "evalwire.runner",
    "run_experiment": "evalwire.api",
    "async_run_experiment": "evalwire.api",
    "ExperimentsFailed": "evalwire.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evalwire' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
