"""Finding the score in a logged result: a dotted path or a list of keys.

``"metrics.accuracy"`` and ``["metrics", "accuracy"]`` name the same place; the
list form reaches keys that contain dots (``["gen.v2", "score"]``). A step that
is an integer, or a string of digits, picks an item from a list.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from evalwire.errors import UsageError

__all__ = ["ScoreError", "ScorePath", "dotted", "extract_score", "score_path"]

#: A score's place in a result: ``"a.b"`` or ``["a", "b"]`` (an ``int`` indexes a list).
ScorePath = str | Sequence[str | int]


class ScoreError(ValueError):
    """A result has no number at the score path; the message says what is there instead."""


def score_path(key: ScorePath) -> tuple[str | int, ...]:
    """``key`` as a tuple of steps: a string is split at dots, a list is taken as is."""
    # A list may name any key, even "" or one with dots; a dotted path cannot.
    dotted = isinstance(key, str)
    steps: tuple[str | int, ...] = tuple(key.split(".")) if isinstance(key, str) else tuple(key)
    if not steps or any(
        not isinstance(s, str | int) or isinstance(s, bool) or (dotted and s == "") for s in steps
    ):
        raise UsageError(
            f"score_key {key!r} is not a score path: give a dotted path such as "
            "'metrics.accuracy' or a list of keys such as ['generation', 'score']"
        )
    return steps


def extract_score(data: Any, path: Sequence[str | int]) -> float:
    """The number at ``path`` in ``data`` (nested mappings, and lists for ``int`` steps).

    Raises :class:`ScoreError` (only that) when a step is missing, leads into
    something that is not a mapping or list, or the value found is not a
    finite real number. ``True``/``False`` count as 1 and 0.
    """
    current = data
    for depth, step in enumerate(path):
        where = f"'{dotted(path[:depth])}'" if depth else "the result"
        if isinstance(current, Mapping):
            try:
                found = step in current
            except TypeError:  # an unhashable step: the key cannot be there
                found = False
            if not found:
                keys = ", ".join(repr(k) for k in itertools.islice(current, 8)) or "none"
                raise ScoreError(
                    f"no score at '{dotted(path)}': {where} has no key {step!r} (its keys: {keys})"
                )
            current = current[step]
        elif _is_list(current) and (position := _position(step)) is not None:
            if not -len(current) <= position < len(current):
                raise ScoreError(
                    f"no score at '{dotted(path)}': {where} has {len(current)} items, "
                    f"not an item {position}"
                )
            current = current[position]
        else:
            raise ScoreError(
                f"no score at '{dotted(path)}': {where} is {_kind(current)}, "
                f"not a mapping with the key {step!r}"
            )
    if isinstance(current, numbers.Real):
        value = float(current)
        if math.isfinite(value):
            return value
        raise ScoreError(f"the score at '{dotted(path)}' is {value}, not a finite number")
    raise ScoreError(f"the score at '{dotted(path)}' is {_kind(current)}, not a number")


def _position(step: str | int) -> int | None:
    """``step`` as a list index (``3``, ``"3"``, ``"-1"``), or ``None``."""
    if isinstance(step, bool):
        return None
    if isinstance(step, int):
        return step
    if not isinstance(step, str):
        return None
    digits = step[1:] if step.startswith("-") else step
    return int(step) if digits.isascii() and digits.isdigit() else None


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def dotted(path: Sequence[str | int]) -> str:
    """``path`` written as a dotted path (how the evaluation is named)."""
    return ".".join(str(step) for step in path)


def _kind(value: Any) -> str:
    text = repr(value) if isinstance(value, str | int | float | type(None)) else ""
    if len(text) > 40:
        text = text[:37] + "..."
    return text or f"a {type(value).__name__}"
