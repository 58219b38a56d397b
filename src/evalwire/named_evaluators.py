"""Evaluators named in ``evalwire.toml`` instead of written as Python files.

``[experiments.NAME] evaluators = ["exact_match", {name = "top5", use = "top_k", K = 5}]``
builds each entry from a factory that a plugin registered under that name
(``evalwire_register_evaluators``) and adds it to the experiment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from evalwire.errors import UsageError
from evalwire.models import ExperimentSpec


def build_named(
    entries: Any, factories: Mapping[str, Callable[..., Any]], where: str
) -> dict[str, Any]:
    """The evaluators ``entries`` describe, by name; a bad entry is a :class:`UsageError`."""
    if not isinstance(entries, list):
        raise UsageError(f"{where}: 'evaluators' must be a list, not {entries!r}")
    built: dict[str, Any] = {}
    for position, entry in enumerate(entries):
        here = f"{where}.evaluators[{position}]"
        if isinstance(entry, str):
            name, use, options = entry, entry, {}
        elif isinstance(entry, dict):
            options = dict(entry)
            use = options.pop("use", None) or options.get("name")
            name = options.pop("name", None) or use
            if not isinstance(use, str) or not isinstance(name, str):
                raise UsageError(f"{here}: give 'use' (a factory name) and optionally 'name'")
        else:
            raise UsageError(f"{here}: expected a name or a table, not {entry!r}")
        factory = factories.get(use)
        if factory is None:
            raise UsageError(
                f"{here}: unknown evaluator '{use}'; known: {', '.join(sorted(factories))}"
            )
        try:
            built[name] = factory(**options)
        except Exception as exc:  # a bad option: say which entry, not a traceback
            raise UsageError(f"{here} ('{name}'): {type(exc).__name__}: {exc}") from None
    return built


def with_named_evaluators(
    spec: ExperimentSpec, settings: Mapping[str, Any], factories: Mapping[str, Callable[..., Any]]
) -> ExperimentSpec:
    """``spec`` with the evaluators its ``[experiments.NAME]`` table names added."""
    entries = settings.get("evaluators")
    if entries is None:
        return spec
    named = build_named(entries, factories, f"[experiments.{spec.name}]")
    return dataclasses.replace(spec, evaluators={**spec.evaluators, **named})
