"""Turning whatever an evaluator returned into an :class:`Evaluation`."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any

from evalwire.models import Evaluation

_KEYS = ("score", "label", "explanation", "metadata")


def to_evaluation(result: Any, name: str) -> Evaluation:
    """Normalize an evaluator's result, named ``name``.

    bool → score 1.0/0.0 with label "True"/"False"; a number → score; a string →
    label; ``(score, label[, explanation])``; a dict with ``score``, ``label``,
    ``explanation``, ``metadata``; an :class:`Evaluation` (renamed). Anything
    else is an evaluation error that says what came back.
    """
    if isinstance(result, Evaluation):
        return result if result.name == name else dataclasses.replace(result, name=name)
    if isinstance(result, bool):
        return Evaluation(name, score=float(result), label=str(result))
    if isinstance(result, numbers.Real):
        return Evaluation(name, score=float(result))
    if isinstance(result, str):
        return Evaluation(name, label=result)
    if isinstance(result, tuple) and 1 <= len(result) <= 3:
        score, label, explanation = (*result, None, None)[:3]
        return Evaluation(
            name,
            score=_score(score, name),
            label=None if label is None else str(label),
            explanation=None if explanation is None else str(explanation),
        )
    if isinstance(result, Mapping):
        unknown = set(result) - set(_KEYS)
        if unknown or not result:
            return Evaluation(
                name,
                error=f"evaluator returned a dict with keys {sorted(result)}; "
                f"expected some of {list(_KEYS)}",
            )
        label = result.get("label")
        explanation = result.get("explanation")
        return Evaluation(
            name,
            score=_score(result.get("score"), name),
            label=None if label is None else str(label),
            explanation=None if explanation is None else str(explanation),
            metadata=dict(result.get("metadata") or {}),
        )
    kind = "None" if result is None else type(result).__name__
    return Evaluation(
        name,
        error=f"evaluator returned {kind}; return a bool, number, str, "
        "(score, label, explanation), dict or Evaluation",
    )


def _score(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool | numbers.Real):
        return float(value)
    raise TypeError(f"evaluator '{name}' returned score {value!r}, which is not a number")
