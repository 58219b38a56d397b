"""How evaluators decide that two values are the same.

Two rules, both without guessing at types:

* :func:`loose_equal` is for answers that may have travelled through text (a
  CSV cell, a model's reply): when either side is a string, the two are
  compared by their string forms, so ``"4"`` matches ``4`` and ``"4"``; when
  neither is, they are compared as given.
* :func:`json_equal` is for structured values: JSON's own notion of equality,
  where ``true`` is not ``1`` and ``"4"`` is not ``4``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

TextNormalizer = Callable[[str], str]

_WHITESPACE = re.compile(r"\s+")


def as_text(value: Any) -> str:
    """The string form of ``value`` used for text comparisons."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def make_normalizer(
    *,
    case_sensitive: bool = True,
    strip_whitespace: bool = False,
    normalize_whitespace: bool = False,
) -> TextNormalizer:
    """A function that puts text in the form the options ask comparisons to ignore."""

    def normalize(text: str) -> str:
        if normalize_whitespace:
            text = _WHITESPACE.sub(" ", text).strip()
        elif strip_whitespace:
            text = text.strip()
        if not case_sensitive:
            # casefold, not lower: "Straße" and "STRASSE" are the same word.
            text = text.casefold()
        return text

    return normalize


def same_value(a: Any, b: Any) -> bool:
    """``a == b``, made total: NaN equals NaN and a failing ``==`` is "not equal"."""
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        # bool() because some types (arrays) answer == with something else.
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def loose_equal(a: Any, b: Any, normalize: TextNormalizer | None = None) -> bool:
    """Equal as given, or by string form when either side is a string."""
    if isinstance(a, (str, bytes, bytearray)) or isinstance(b, (str, bytes, bytearray)):
        left, right = as_text(a), as_text(b)
        if normalize is not None:
            left, right = normalize(left), normalize(right)
        return left == right
    return same_value(a, b)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: booleans are not numbers, strings are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (Mapping, list, tuple)) or isinstance(b, (Mapping, list, tuple)):
        return False
    if isinstance(a, str) != isinstance(b, str):
        return False
    return same_value(a, b)
