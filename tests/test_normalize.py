"""Whatever an evaluator returns becomes an Evaluation, or a readable error."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalwire.models import Evaluation
from evalwire.normalize import to_evaluation


def test_a_bool_is_a_score_with_a_label() -> None:
    assert to_evaluation(True, "ok") == Evaluation("ok", score=1.0, label="True")


def test_a_number_is_a_score() -> None:
    assert to_evaluation(0.25, "f1") == Evaluation("f1", score=0.25)


def test_a_string_is_a_label() -> None:
    assert to_evaluation("relevant", "judge") == Evaluation("judge", label="relevant")


def test_a_tuple_is_score_label_explanation() -> None:
    got = to_evaluation((0.5, "partial", "one of two"), "recall")
    assert got == Evaluation("recall", score=0.5, label="partial", explanation="one of two")


def test_a_dict_carries_metadata() -> None:
    got = to_evaluation({"score": 1, "metadata": {"k": 3}}, "topk")
    assert got.score == 1.0 and got.metadata == {"k": 3}


def test_an_evaluation_is_renamed_to_the_evaluator_name() -> None:
    assert to_evaluation(Evaluation("exact_match", score=1.0), "em_strict").name == "em_strict"


def test_none_is_an_error_not_a_zero() -> None:
    got = to_evaluation(None, "broken")
    assert got.score is None and got.error is not None and "None" in got.error


def test_a_dict_with_unknown_keys_is_an_error_naming_them() -> None:
    got = to_evaluation({"scroe": 1}, "typo")
    assert got.error is not None and "scroe" in got.error


def test_a_non_numeric_score_raises() -> None:
    with pytest.raises(TypeError, match="not a number"):
        to_evaluation(("high", "label"), "x")


results = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.text(),
    st.tuples(st.floats(allow_nan=False), st.text()),
    st.tuples(st.floats(allow_nan=False), st.text(), st.text()),
    st.fixed_dictionaries(
        {"score": st.floats(allow_nan=False)},
        optional={"label": st.text(), "explanation": st.text()},
    ),
)


@given(results, st.text(min_size=1))
def test_every_supported_result_normalizes_to_an_evaluation_of_that_name(
    result: Any, name: str
) -> None:
    got = to_evaluation(result, name)
    assert got.name == name and got.error is None


@given(st.floats(allow_nan=False))
def test_a_score_keeps_its_value(value: float) -> None:
    got = to_evaluation(value, "s").score
    assert got is not None and (got == value or (math.isinf(value) and got == value))
