"""Scoring ranked outputs (retrieval results, recommendations) against expected items."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from evalwire.evaluators._compare import loose_equal
from evalwire.evaluators._evaluation import evaluator, graded, no_output, show
from evalwire.evaluators._expected import (
    DEFAULT_EXPECTED_KEY,
    ExpectedReader,
    ExpectedValueError,
    Parse,
    as_items,
)
from evalwire.models import Evaluation

__all__ = ["make_top_k_evaluator"]


def make_top_k_evaluator(
    K: int = 20,  # noqa: N803 - upstream's name, kept so existing configs still work
    *,
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
    separator: str | None = None,
    parse: Parse | None = None,
) -> Callable[..., Evaluation]:
    """A position-weighted retrieval score over the first ``K`` outputs.

    Each expected item found at 0-based position ``pos`` among the first ``K``
    outputs scores ``1 - pos / K``; an item not found there scores 0. The
    evaluation's score is the mean over expected items, so finding every item
    at the top scores 1.0 and finding an item later never scores higher.

    The output is a list (or tuple) in rank order, or a delimited string when
    ``separator=`` is given (the same separator splits a delimited expected
    string); a string without a separator is a single item. Items match as
    :func:`~evalwire.evaluators._compare.loose_equal` says (``"3"`` finds ``3``).

    Returns ``top_k(output, expected) -> Evaluation`` with the found
    ``positions`` (``None`` for missing items) in its metadata.
    """
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"K must be a positive integer, not {K!r}")
    reader = ExpectedReader.of(expected_key, parse=parse, separator=separator)

    @evaluator("top_k")
    def top_k(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        wanted = reader.items(expected)
        if not wanted:
            # A mean over no items is undefined; a dataset row like that is a mistake.
            raise ExpectedValueError(f"expected {expected_key!r} lists no items to look for")
        if output is None:
            return no_output("top_k")
        window = as_items(output, reader.separator)[:K]
        positions = [_position(item, window) for item in wanted]
        score = sum(1.0 - pos / K for pos in positions if pos is not None) / len(wanted)
        missing = [item for item, pos in zip(wanted, positions, strict=True) if pos is None]
        explanation = None
        if missing:
            explanation = f"not in the top {K}: {', '.join(show(m) for m in missing)}"
        elif score < 1.0:
            explanation = "found at positions " + ", ".join(
                f"{show(item)}@{pos}" for item, pos in zip(wanted, positions, strict=True)
            )
        return graded("top_k", score, explanation, metadata={"positions": positions})

    return top_k


def _position(item: Any, window: list[Any]) -> int | None:
    for pos, candidate in enumerate(window):
        if loose_equal(candidate, item):
            return pos
    return None
