"""Properties of the built-in evaluators over inputs nobody thought to write down.

The strategies deliberately include the values that broke upstream: strings
that look like numbers, booleans, ``None`` and JSON text, unicode and empty
values. Nothing is filtered away.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from evalwire.evaluators import (
    make_all_pass_evaluator,
    make_contains_evaluator,
    make_exact_match_evaluator,
    make_json_match_evaluator,
    make_levenshtein_evaluator,
    make_membership_evaluator,
    make_numeric_tolerance_evaluator,
    make_regex_evaluator,
    make_schema_evaluator,
    make_token_f1_evaluator,
    make_top_k_evaluator,
    make_weighted_evaluator,
)
from evalwire.evaluators.similarity import levenshtein_distance
from evalwire.models import Evaluation

# Text that tempts an evaluator to guess at types.
tricky_text = st.one_of(
    st.text(),
    st.sampled_from(
        [
            "",
            " ",
            "4",
            "4.0",
            "-0",
            "1e3",
            "nan",
            "inf",
            "True",
            "true",
            "None",
            "null",
            "[]",
            "{}",
            "['a', 'b']",
            '["a", "b"]',
            '{"a": 1}',
            "(1, 2)",
            "ß",
            "ﬁ",
            "\u200b",
        ]
    ),
    st.integers().map(str),
    st.floats().map(str),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    tricky_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)

# Anything a task might return or a dataset might hold.
values = st.one_of(
    json_values,
    st.floats(),  # NaN and infinities included
    st.lists(tricky_text, max_size=5),
    st.tuples(tricky_text, st.integers()),
    json_values.map(json.dumps),
)

EVALUATORS = [
    make_exact_match_evaluator(),
    make_exact_match_evaluator(case_sensitive=False, normalize_whitespace=True),
    make_membership_evaluator(),
    make_membership_evaluator(separator="|"),
    make_contains_evaluator(),
    make_contains_evaluator(require="any", case_sensitive=False),
    make_regex_evaluator(r"\d+"),
    make_regex_evaluator(),
    make_json_match_evaluator(),
    make_json_match_evaluator(keys=["a", ""]),
    make_schema_evaluator({"type": "object", "required": ["a"]}),
    make_numeric_tolerance_evaluator(rtol=0.1),
    make_top_k_evaluator(K=3),
    make_top_k_evaluator(separator=","),
    make_token_f1_evaluator(),
    make_levenshtein_evaluator(),
    make_weighted_evaluator({make_exact_match_evaluator(): 1, make_token_f1_evaluator(): 2}),
    make_all_pass_evaluator([make_contains_evaluator(), make_levenshtein_evaluator()]),
]


def score_of(result: Any) -> float:
    assert isinstance(result, Evaluation)
    assert result.score is not None, result.error
    return result.score


@given(output=values, expected=values, index=st.integers(0, len(EVALUATORS) - 1))
def test_every_evaluator_scores_in_zero_to_one_or_reports_an_error(
    output: Any, expected: Any, index: int
) -> None:
    result = EVALUATORS[index](output, {"expected_output": expected})

    assert isinstance(result, Evaluation)
    if result.error is None:
        assert result.score is not None and 0.0 <= result.score <= 1.0
    else:
        assert result.score is None


@given(output=values, index=st.integers(0, len(EVALUATORS) - 1))
def test_every_evaluator_reports_a_missing_expected_key_or_does_not_need_one(
    output: Any, index: int
) -> None:
    result = EVALUATORS[index](output, {"something_else": 1})

    assert result.error is None or "'expected_output'" in result.error


@given(x=st.one_of(values, st.floats()))
def test_exact_match_of_a_value_with_itself_is_a_match(x: Any) -> None:
    for exact_match in (
        make_exact_match_evaluator(),
        make_exact_match_evaluator(case_sensitive=False, strip_whitespace=False),
        make_exact_match_evaluator(normalize_whitespace=True),
    ):
        assert exact_match(x, {"expected_output": x}).label == "match"


@given(n=st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_exact_match_of_a_number_with_its_string_form_is_a_match(n: float) -> None:
    exact_match = make_exact_match_evaluator()

    assert exact_match(str(n), {"expected_output": n}).label == "match"
    assert exact_match(n, {"expected_output": str(n)}).label == "match"


@given(d=json_objects)
def test_json_match_of_an_object_with_itself_scores_one(d: dict[str, Any]) -> None:
    json_match = make_json_match_evaluator()

    assert score_of(json_match(d, {"expected_output": d})) == 1.0
    assert score_of(json_match(json.dumps(d), {"expected_output": json.dumps(d)})) == 1.0


@given(d=json_objects, keys=st.lists(st.text(), max_size=4))
def test_json_match_of_an_object_with_itself_scores_one_for_any_keys(
    d: dict[str, Any], keys: list[str]
) -> None:
    json_match = make_json_match_evaluator(keys=keys)

    assert score_of(json_match(d, {"expected_output": d})) == 1.0


@given(
    filler=st.lists(st.text(min_size=1), max_size=25, unique=True),
    item=tricky_text,
    first=st.integers(0, 25),
    second=st.integers(0, 25),
    k=st.integers(1, 30),
)
def test_top_k_never_scores_an_item_found_later_higher(
    filler: list[str], item: str, first: int, second: int, k: int
) -> None:
    top_k = make_top_k_evaluator(K=k)
    others = [f for f in filler if f != item]
    earlier, later = sorted((min(first, len(others)), min(second, len(others))))

    def found_at(position: int) -> float:
        output = others[:position] + [item] + others[position:]
        return score_of(top_k(output, {"expected_output": [item]}))

    assert found_at(earlier) >= found_at(later)


@given(labels=st.lists(tricky_text, min_size=1, max_size=5), pick=st.integers(0, 4))
def test_membership_matches_any_value_of_the_expected_list(labels: list[str], pick: int) -> None:
    membership = make_membership_evaluator()

    assert membership(labels[pick % len(labels)], {"expected_output": labels}).label == "match"


@given(before=st.text(), needle=tricky_text, after=st.text())
def test_contains_finds_text_wherever_it_is(before: str, needle: str, after: str) -> None:
    contains = make_contains_evaluator()

    assert contains(before + needle + after, {"expected_output": needle}).label == "match"


@given(a=tricky_text, b=tricky_text)
def test_token_f1_is_symmetric(a: str, b: str) -> None:
    token_f1 = make_token_f1_evaluator()

    forward = score_of(token_f1(a, {"expected_output": b}))
    backward = score_of(token_f1(b, {"expected_output": a}))

    assert math.isclose(forward, backward)


@given(text=tricky_text)
def test_text_similarity_of_a_text_with_itself_is_one(text: str) -> None:
    for evaluate in (make_token_f1_evaluator(), make_levenshtein_evaluator()):
        assert score_of(evaluate(text, {"expected_output": text})) == 1.0


@given(a=st.text(max_size=30), b=st.text(max_size=30))
def test_levenshtein_distance_is_symmetric_and_bounded_by_the_longer_text(a: str, b: str) -> None:
    distance = levenshtein_distance(a, b)

    assert distance == levenshtein_distance(b, a)
    assert abs(len(a) - len(b)) <= distance <= max(len(a), len(b))


@given(a=st.text(max_size=12), b=st.text(max_size=12), c=st.text(max_size=12))
def test_levenshtein_distance_obeys_the_triangle_inequality(a: str, b: str, c: str) -> None:
    assert levenshtein_distance(a, c) <= levenshtein_distance(a, b) + levenshtein_distance(b, c)


@given(x=st.one_of(st.integers(), st.floats(allow_nan=False)), as_text=st.booleans())
def test_numeric_tolerance_passes_a_number_against_itself(x: float, as_text: bool) -> None:
    numeric = make_numeric_tolerance_evaluator()
    output = str(x) if as_text else x

    assert numeric(output, {"expected_output": x}).label == "pass"
