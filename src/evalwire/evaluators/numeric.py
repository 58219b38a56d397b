"""Comparing numeric answers within a tolerance."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from evalwire.evaluators._evaluation import PASS_LABELS, evaluator, no_output, show, verdict
from evalwire.evaluators._expected import DEFAULT_EXPECTED_KEY, ExpectedReader, ExpectedValueError
from evalwire.models import Evaluation

__all__ = ["make_numeric_tolerance_evaluator"]


def make_numeric_tolerance_evaluator(
    atol: float = 1e-6,
    rtol: float = 0.0,
    *,
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
) -> Callable[..., Evaluation]:
    """An evaluator that passes when the output is within tolerance of the expected number.

    The test is ``|output - expected| <= atol + rtol * |expected|`` (upstream's
    rule: the relative part scales with the expected value). Both sides may
    be numbers or numeric strings (``"3.5"``, ``" 1e3 "``); booleans are not
    numbers here. An output that is not a number fails with an explanation;
    an expected value that is not a number is an evaluation error.

    Returns ``numeric_tolerance(output, expected) -> Evaluation`` scoring 1.0
    (``"pass"``) or 0.0 (``"fail"``).
    """
    for option, value in (("atol", atol), ("rtol", rtol)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
            raise ValueError(f"{option} must be a non-negative number, not {value!r}")
    reader = ExpectedReader.of(expected_key)

    @evaluator("numeric_tolerance")
    def numeric_tolerance(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        raw = reader.value(expected)
        want = _number(raw)
        if want is None:
            raise ExpectedValueError(f"expected {expected_key!r} is not a number: {show(raw)}")
        if output is None:
            return no_output("numeric_tolerance", PASS_LABELS[1])
        got = _number(output)
        if got is None:
            return verdict(
                "numeric_tolerance",
                False,
                f"output {show(output)} is not a number",
                labels=PASS_LABELS,
            )
        allowed = atol + rtol * abs(want)
        # Equal infinities are close; their difference (NaN) would say otherwise.
        close = got == want or abs(got - want) <= allowed
        return verdict(
            "numeric_tolerance",
            close,
            f"output {got!r} differs from expected {want!r} by {abs(got - want)!r} "
            f"(allowed {allowed!r})",
            labels=PASS_LABELS,
        )

    return numeric_tolerance


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Number):  # int, float, Decimal, Fraction, numpy scalars
        try:
            return float(value)  # type: ignore[arg-type]
        except (OverflowError, ValueError, TypeError):
            return None
    if isinstance(value, (str, bytes, bytearray)):
        try:
            number = float(value)
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None
