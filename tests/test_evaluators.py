"""Behaviour of the built-in evaluator factories in ``evalwire.evaluators``."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from evalwire.evaluators import (
    BUILTIN_EVALUATORS,
    make_all_pass_evaluator,
    make_any_pass_evaluator,
    make_contains_evaluator,
    make_exact_match_evaluator,
    make_json_match_evaluator,
    make_levenshtein_evaluator,
    make_llm_judge_evaluator,
    make_membership_evaluator,
    make_numeric_tolerance_evaluator,
    make_regex_evaluator,
    make_schema_evaluator,
    make_token_f1_evaluator,
    make_top_k_evaluator,
    make_weighted_evaluator,
)
from evalwire.models import Evaluation

BINDABLE = {"output", "expected", "input", "metadata", "example"}


def expect(value: Any) -> dict[str, Any]:
    """An example's expected dict holding ``value`` in upstream's column."""
    return {"expected_output": value}


def run(result: Any) -> Evaluation:
    """The evaluation, awaiting it when the evaluator was async."""
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    assert isinstance(result, Evaluation)
    return result


async def _await(awaitable: Any) -> Evaluation:
    result = await awaitable
    assert isinstance(result, Evaluation)
    return result


# Factories whose evaluators read the expected value, built with defaults.
READING_EXPECTED = {
    "exact_match": make_exact_match_evaluator,
    "membership": make_membership_evaluator,
    "contains": make_contains_evaluator,
    "regex": make_regex_evaluator,
    "json_match": make_json_match_evaluator,
    "numeric_tolerance": make_numeric_tolerance_evaluator,
    "top_k": make_top_k_evaluator,
    "token_f1": make_token_f1_evaluator,
    "levenshtein": make_levenshtein_evaluator,
}


# --- upstream bugs that must not come back ---------------------------------------------


def test_exact_match_matches_a_numeric_string_upstream_turned_into_an_int() -> None:
    exact_match = make_exact_match_evaluator()

    assert exact_match("4", expect("4")).label == "match"


def test_contains_finds_a_numeric_expected_value_upstream_crashed_on() -> None:
    contains = make_contains_evaluator()

    assert contains("the answer is 42", expect(42)).score == 1.0
    assert contains("the answer is 42", expect("42")).score == 1.0


def test_json_match_scores_identical_objects_one_where_upstream_scored_zero() -> None:
    json_match = make_json_match_evaluator()

    assert json_match({"a": 1, "b": [2]}, expect({"a": 1, "b": [2]})).score == 1.0
    assert json_match('{"a": 1, "b": [2]}', expect('{"a": 1, "b": [2]}')).score == 1.0


# --- reading the expected value ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(READING_EXPECTED))
def test_a_missing_expected_key_is_an_error_naming_it_and_the_keys_present(name: str) -> None:
    evaluate = READING_EXPECTED[name]()

    result = run(evaluate("anything", {"answer": "x"}))

    assert result.score is None
    assert result.error is not None
    assert "'expected_output'" in result.error and "'answer'" in result.error


def test_expected_key_chooses_where_the_expected_value_is_read() -> None:
    exact_match = make_exact_match_evaluator(expected_key="answer")

    assert exact_match("Paris", {"answer": "Paris"}).score == 1.0


def test_expected_key_none_compares_against_the_whole_expected_dict() -> None:
    json_match = make_json_match_evaluator(expected_key=None)

    assert json_match('{"city": "Paris"}', {"city": "Paris"}).score == 1.0


def test_a_list_looking_string_stays_a_string_without_parse() -> None:
    membership = make_membership_evaluator()

    assert membership("a", expect("['a', 'b']")).label == "no_match"
    assert membership("['a', 'b']", expect("['a', 'b']")).label == "match"


def test_parse_literal_reads_lists_written_as_python_literals() -> None:
    membership = make_membership_evaluator(parse="literal")

    assert membership("b", expect("['a', 'b']")).label == "match"


def test_parse_json_reads_lists_written_as_json() -> None:
    membership = make_membership_evaluator(parse="json")

    assert membership("b", expect('["a", "b"]')).label == "match"


def test_an_expected_string_that_does_not_parse_is_an_error_not_text() -> None:
    membership = make_membership_evaluator(parse="literal")

    result = membership("a", expect("a"))

    assert result.error is not None and "Python literal" in result.error


def test_separator_splits_a_delimited_expected_string_into_items() -> None:
    membership = make_membership_evaluator(separator="|")

    assert membership("billing", expect("sales | billing")).label == "match"


def test_an_unknown_parse_option_is_refused_by_the_factory() -> None:
    with pytest.raises(ValueError, match="parse"):
        make_exact_match_evaluator(parse="yaml")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(READING_EXPECTED))
def test_a_none_output_scores_zero_and_says_so(name: str) -> None:
    evaluate = READING_EXPECTED[name]()
    expected = {
        "json_match": expect({"a": 1}),
        "numeric_tolerance": expect(1.5),
        "regex": expect("a+"),
    }.get(name, expect("a"))

    result = run(evaluate(None, expected))

    assert result.score == 0.0
    assert result.explanation == "output is None"


# --- the registry and the evaluator functions -------------------------------------------


def test_the_registry_names_every_factory_by_its_short_name() -> None:
    for name, factory in BUILTIN_EVALUATORS.items():
        assert factory.__name__ == f"make_{name}_evaluator"
    assert len(BUILTIN_EVALUATORS) == 14


def _built(name: str) -> Any:
    child = make_exact_match_evaluator()
    special = {
        "schema": lambda: make_schema_evaluator({"type": "object"}),
        "weighted": lambda: make_weighted_evaluator({child: 1.0}),
        "all_pass": lambda: make_all_pass_evaluator([child]),
        "any_pass": lambda: make_any_pass_evaluator([child]),
        "llm_judge": lambda: make_llm_judge_evaluator(lambda prompt: "pass", "{output}"),
    }
    return special.get(name, BUILTIN_EVALUATORS[name])()


@pytest.mark.parametrize("name", sorted(BUILTIN_EVALUATORS))
def test_every_evaluator_is_named_for_what_it_is(name: str) -> None:
    evaluate = _built(name)

    assert evaluate.__name__ == name
    assert run(evaluate("x", expect("x"))).name == name


@pytest.mark.parametrize("name", sorted(BUILTIN_EVALUATORS))
def test_every_evaluator_takes_only_parameters_evalwire_binds_by_name(name: str) -> None:
    parameters = inspect.signature(_built(name)).parameters

    assert "output" in parameters
    assert set(parameters) <= BINDABLE


def test_importing_the_evaluators_does_not_import_jsonschema() -> None:
    code = "import sys, evalwire.evaluators; print('jsonschema' in sys.modules)"

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"


# --- exact_match -------------------------------------------------------------------------


def test_exact_match_compares_a_number_with_a_numeric_string_by_string_form() -> None:
    exact_match = make_exact_match_evaluator()

    assert exact_match(4, expect("4")).label == "match"
    assert exact_match("4", expect(4)).label == "match"


def test_exact_match_compares_non_strings_as_given() -> None:
    exact_match = make_exact_match_evaluator()

    assert exact_match(["a", "b"], expect(["a", "b"])).label == "match"
    assert exact_match(["a", "b"], expect(["b", "a"])).label == "no_match"


def test_exact_match_is_case_sensitive_by_default() -> None:
    exact_match = make_exact_match_evaluator()

    assert exact_match("paris", expect("Paris")).label == "no_match"


def test_exact_match_can_ignore_case() -> None:
    exact_match = make_exact_match_evaluator(case_sensitive=False)

    assert exact_match("PARIS", expect("Paris")).label == "match"


def test_exact_match_ignores_surrounding_whitespace_by_default() -> None:
    exact_match = make_exact_match_evaluator()

    assert exact_match("Paris\n", expect("Paris")).label == "match"


def test_exact_match_can_keep_surrounding_whitespace_significant() -> None:
    exact_match = make_exact_match_evaluator(strip_whitespace=False)

    assert exact_match("Paris\n", expect("Paris")).label == "no_match"


def test_exact_match_can_treat_runs_of_whitespace_as_one_space() -> None:
    exact_match = make_exact_match_evaluator(normalize_whitespace=True)

    assert exact_match("New   York\tCity", expect("New York City")).label == "match"


def test_exact_match_explains_a_mismatch_with_both_values() -> None:
    exact_match = make_exact_match_evaluator()

    result = exact_match("Lyon", expect("Paris"))

    assert result.score == 0.0
    assert result.explanation is not None
    assert "'Lyon'" in result.explanation and "'Paris'" in result.explanation


def test_exact_match_explanations_are_truncated() -> None:
    exact_match = make_exact_match_evaluator()

    result = exact_match("x" * 10_000, expect("y" * 10_000))

    assert result.explanation is not None and len(result.explanation) < 500


def test_exact_match_matches_a_none_output_with_an_expected_none() -> None:
    exact_match = make_exact_match_evaluator()

    assert exact_match(None, expect(None)).label == "match"


# --- membership ----------------------------------------------------------------------------


def test_membership_passes_when_the_output_is_one_of_the_expected_labels() -> None:
    membership = make_membership_evaluator()

    assert membership("billing", expect(["sales", "billing"])).score == 1.0


def test_membership_explains_which_labels_were_accepted() -> None:
    membership = make_membership_evaluator()

    result = membership("support", expect(["sales", "billing"]))

    assert result.label == "no_match"
    assert result.explanation is not None and "'billing'" in result.explanation


def test_membership_treats_a_single_expected_value_as_a_one_item_list() -> None:
    membership = make_membership_evaluator()

    assert membership("sales", expect("sales")).label == "match"


def test_membership_can_ignore_case() -> None:
    membership = make_membership_evaluator(case_sensitive=False)

    assert membership("Billing", expect(["billing"])).label == "match"


def test_membership_of_an_empty_list_never_matches() -> None:
    membership = make_membership_evaluator()

    result = membership("sales", expect([]))

    assert result.label == "no_match" and result.explanation is not None


# --- contains ------------------------------------------------------------------------------


def test_contains_passes_when_the_expected_text_is_a_substring() -> None:
    contains = make_contains_evaluator()

    assert contains("The capital is Paris.", expect("Paris")).label == "match"


def test_contains_looks_for_elements_in_a_list_output() -> None:
    contains = make_contains_evaluator()

    assert contains(["doc-1", "doc-2"], expect("doc-2")).label == "match"
    assert contains(["doc-10"], expect("doc-1")).label == "no_match"


def test_contains_gives_partial_credit_and_names_the_missing_items() -> None:
    contains = make_contains_evaluator()

    result = contains("Paris is in France", expect(["Paris", "France", "Europe"]))

    assert result.score == pytest.approx(2 / 3)
    assert result.label == "no_match"
    assert result.explanation is not None and "'Europe'" in result.explanation


def test_contains_with_require_any_passes_on_one_item() -> None:
    contains = make_contains_evaluator(require="any")

    assert contains("Paris", expect(["Lyon", "Paris"])).score == 1.0


def test_contains_can_ignore_case() -> None:
    contains = make_contains_evaluator(case_sensitive=False)

    assert contains("PARIS!", expect("paris")).label == "match"


def test_contains_refuses_an_unknown_require_option() -> None:
    with pytest.raises(ValueError, match="require"):
        make_contains_evaluator(require="most")  # type: ignore[arg-type]


# --- regex ---------------------------------------------------------------------------------


def test_regex_passes_when_the_pattern_is_found_in_the_output() -> None:
    regex = make_regex_evaluator(r"\d{4}-\d{2}-\d{2}")

    assert regex("on 2024-05-01", {}).label == "match"


def test_regex_explains_what_did_not_match() -> None:
    regex = make_regex_evaluator(r"^\d+$")

    result = regex("twelve", {})

    assert result.label == "no_match"
    assert result.explanation is not None and "'twelve'" in result.explanation


def test_regex_with_an_invalid_pattern_fails_when_the_factory_is_called() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        make_regex_evaluator("(unclosed")


def test_regex_full_match_requires_the_whole_output_to_match() -> None:
    regex = make_regex_evaluator(r"\d+", full_match=True)

    assert regex("123", {}).label == "match"
    assert regex("123 apples", {}).label == "no_match"


def test_regex_without_a_pattern_reads_one_from_each_example() -> None:
    regex = make_regex_evaluator()

    assert regex("ID-42", expect(r"ID-\d+")).label == "match"


def test_regex_reports_an_invalid_pattern_in_an_example_as_an_error() -> None:
    regex = make_regex_evaluator()

    result = regex("x", expect("(unclosed"))

    assert result.error is not None and "invalid regular expression" in result.error


# --- json_match ----------------------------------------------------------------------------


def test_json_match_scores_the_fraction_of_expected_keys_that_are_equal() -> None:
    json_match = make_json_match_evaluator()

    result = json_match({"a": 1, "b": 2, "c": 3, "d": 0}, expect({"a": 1, "b": 2, "c": 4, "d": 5}))

    assert result.score == 0.5


def test_json_match_explanation_names_the_keys_that_differed() -> None:
    json_match = make_json_match_evaluator()

    result = json_match(
        '{"tool": "search", "query": "cats"}', expect({"tool": "search", "query": "dogs"})
    )

    assert result.explanation is not None
    assert "'query'" in result.explanation and "'tool'" not in result.explanation
    assert result.metadata["differed"] == ["query"]


def test_json_match_checks_only_the_keys_asked_for() -> None:
    json_match = make_json_match_evaluator(keys=["tool"])

    assert (
        json_match(
            {"tool": "search", "query": "cats"}, expect({"tool": "search", "query": "dogs"})
        ).score
        == 1.0
    )


def test_json_match_ignores_extra_keys_in_the_output() -> None:
    json_match = make_json_match_evaluator()

    assert json_match({"a": 1, "extra": True}, expect({"a": 1})).score == 1.0


def test_json_match_counts_a_key_missing_from_the_output_as_different() -> None:
    json_match = make_json_match_evaluator()

    result = json_match({"a": 1}, expect({"a": 1, "b": 2}))

    assert result.score == 0.5
    assert result.explanation is not None and "absent" in result.explanation


def test_json_match_does_not_equate_true_with_one_or_a_number_with_its_text() -> None:
    json_match = make_json_match_evaluator()

    assert json_match({"a": True, "b": "4"}, expect({"a": 1, "b": 4})).score == 0.0


def test_json_match_scores_zero_for_output_that_is_not_json() -> None:
    json_match = make_json_match_evaluator()

    result = json_match("not json", expect({"a": 1}))

    assert result.score == 0.0
    assert result.explanation is not None and "not valid JSON" in result.explanation


def test_json_match_scores_zero_for_json_that_is_not_an_object() -> None:
    json_match = make_json_match_evaluator()

    result = json_match("[1, 2]", expect({"a": 1}))

    assert result.score == 0.0
    assert result.explanation is not None and "not an object" in result.explanation


def test_json_match_reports_an_expected_value_that_is_not_an_object_as_an_error() -> None:
    json_match = make_json_match_evaluator()

    assert json_match({"a": 1}, expect("[1]")).error is not None


# --- schema --------------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name"],
}


def test_schema_passes_json_text_that_conforms() -> None:
    schema = make_schema_evaluator(PERSON)

    assert schema('{"name": "Ada", "age": 36}').label == "pass"


def test_schema_accepts_an_already_decoded_output() -> None:
    schema = make_schema_evaluator(PERSON)

    assert schema({"name": "Ada"}).label == "pass"


def test_schema_explains_where_the_output_broke_the_schema() -> None:
    schema = make_schema_evaluator(PERSON)

    result = schema('{"name": "Ada", "age": "old"}')

    assert result.label == "fail"
    assert result.explanation is not None and "$.age" in result.explanation


def test_schema_fails_output_that_is_not_json() -> None:
    schema = make_schema_evaluator(PERSON)

    result = schema("Ada, 36")

    assert result.score == 0.0
    assert result.explanation is not None and "not valid JSON" in result.explanation


def test_schema_refuses_an_invalid_schema_when_the_factory_is_called() -> None:
    with pytest.raises(ValueError, match="invalid JSON Schema"):
        make_schema_evaluator({"type": "no-such-type"})


def test_schema_without_jsonschema_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes the import fail as if the package were absent.
    for module in [m for m in sys.modules if m == "jsonschema" or m.startswith("jsonschema.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "jsonschema", None)

    with pytest.raises(ImportError, match="pip install jsonschema"):
        make_schema_evaluator(PERSON)


# --- numeric_tolerance ---------------------------------------------------------------------


def test_numeric_tolerance_passes_within_the_absolute_tolerance() -> None:
    numeric = make_numeric_tolerance_evaluator(atol=0.01)

    assert numeric(3.145, expect(3.14)).label == "pass"
    assert numeric(3.16, expect(3.14)).label == "fail"


def test_numeric_tolerance_scales_the_relative_tolerance_with_the_expected_value() -> None:
    numeric = make_numeric_tolerance_evaluator(atol=0.0, rtol=0.01)

    assert numeric(1005, expect(1000)).label == "pass"
    assert numeric(1011, expect(1000)).label == "fail"


def test_numeric_tolerance_reads_numbers_written_as_text_on_either_side() -> None:
    numeric = make_numeric_tolerance_evaluator()

    assert numeric(" 2.5\n", expect("2.5")).label == "pass"


def test_numeric_tolerance_explains_how_far_off_the_output_was() -> None:
    numeric = make_numeric_tolerance_evaluator(atol=0.1)

    result = numeric(12, expect(10))

    assert result.explanation is not None and "by 2.0" in result.explanation


def test_numeric_tolerance_fails_an_output_that_is_not_a_number() -> None:
    numeric = make_numeric_tolerance_evaluator()

    result = numeric("about ten", expect(10))

    assert result.score == 0.0
    assert result.explanation is not None and "not a number" in result.explanation


def test_numeric_tolerance_does_not_take_a_boolean_for_a_number() -> None:
    numeric = make_numeric_tolerance_evaluator()

    assert numeric(True, expect(1)).label == "fail"


def test_numeric_tolerance_reports_an_expected_value_that_is_not_a_number_as_an_error() -> None:
    numeric = make_numeric_tolerance_evaluator()

    assert numeric(1, expect("one")).error is not None


def test_numeric_tolerance_refuses_a_negative_tolerance() -> None:
    with pytest.raises(ValueError, match="atol"):
        make_numeric_tolerance_evaluator(atol=-1)


# --- top_k ---------------------------------------------------------------------------------


def test_top_k_scores_each_expected_item_by_its_position() -> None:
    top_k = make_top_k_evaluator(K=10)

    result = top_k(["a", "x", "b"], expect(["a", "b"]))

    # a at 0 scores 1.0, b at 2 scores 0.8.
    assert result.score == pytest.approx(0.9)
    assert result.metadata["positions"] == [0, 2]


def test_top_k_scores_an_item_beyond_the_first_k_as_missing() -> None:
    top_k = make_top_k_evaluator(K=2)

    result = top_k(["x", "y", "a"], expect(["a"]))

    assert result.score == 0.0
    assert result.explanation is not None and "'a'" in result.explanation


def test_top_k_reads_a_delimited_output_with_a_separator() -> None:
    top_k = make_top_k_evaluator(K=4, separator=",")

    assert top_k("x, a", expect("a")).score == pytest.approx(0.75)


def test_top_k_finds_numeric_items_by_string_form() -> None:
    top_k = make_top_k_evaluator()

    assert top_k([3, 7], expect(["3"])).score == 1.0


def test_top_k_reports_an_empty_expected_list_as_an_error() -> None:
    top_k = make_top_k_evaluator()

    assert top_k(["a"], expect([])).error is not None


def test_top_k_refuses_a_k_below_one() -> None:
    with pytest.raises(ValueError, match="K"):
        make_top_k_evaluator(K=0)


# --- token_f1 and levenshtein --------------------------------------------------------------


def test_token_f1_scores_identical_text_one() -> None:
    token_f1 = make_token_f1_evaluator()

    assert token_f1("The cat sat.", expect("the cat sat")).score == 1.0


def test_token_f1_is_the_harmonic_mean_of_word_precision_and_recall() -> None:
    token_f1 = make_token_f1_evaluator()

    result = token_f1("the cat", expect("the cat sat down"))

    # precision 2/2, recall 2/4
    assert result.score == pytest.approx(2 / 3)
    assert result.metadata == {"precision": 1.0, "recall": 0.5}


def test_token_f1_takes_the_best_of_several_expected_answers() -> None:
    token_f1 = make_token_f1_evaluator()

    assert token_f1("Paris", expect(["Lyon", "Paris"])).score == 1.0


def test_token_f1_scores_text_without_shared_words_zero() -> None:
    token_f1 = make_token_f1_evaluator()

    assert token_f1("dog", expect("cat")).score == 0.0


def test_levenshtein_scores_one_minus_edits_over_the_longer_length() -> None:
    levenshtein = make_levenshtein_evaluator()

    result = levenshtein("kitten", expect("sitting"))

    assert result.score == pytest.approx(1 - 3 / 7)
    assert result.metadata["distance"] == 3


def test_levenshtein_scores_two_empty_texts_one() -> None:
    levenshtein = make_levenshtein_evaluator()

    assert levenshtein("", expect("")).score == 1.0


def test_levenshtein_scores_entirely_different_text_zero() -> None:
    levenshtein = make_levenshtein_evaluator()

    assert levenshtein("abc", expect("xyz")).score == 0.0


# --- composition ---------------------------------------------------------------------------


def test_weighted_scores_the_weighted_mean_of_its_children() -> None:
    exact = make_exact_match_evaluator()
    contains = make_contains_evaluator()
    weighted = make_weighted_evaluator({exact: 3, contains: 1})

    result = weighted("Paris, France", expect("Paris"))

    assert result.score == pytest.approx(0.25)
    assert result.metadata["scores"] == {"exact_match": 0.0, "contains": 1.0}


def test_weighted_accepts_evaluator_weight_pairs_and_numbers_repeats() -> None:
    exact = make_exact_match_evaluator()
    weighted = make_weighted_evaluator([(exact, 1), (exact, 1)])

    result = weighted("a", expect("a"))

    assert result.score == 1.0
    assert set(result.metadata["scores"]) == {"exact_match", "exact_match#2"}


def test_weighted_refuses_negative_or_all_zero_weights() -> None:
    exact = make_exact_match_evaluator()

    with pytest.raises(ValueError, match="non-negative"):
        make_weighted_evaluator({exact: -1})
    with pytest.raises(ValueError, match="zero"):
        make_weighted_evaluator({exact: 0})


def test_weighted_given_an_evaluator_without_a_weight_names_it() -> None:
    with pytest.raises(ValueError, match="needs a weight for each evaluator.*got exact_match"):
        make_weighted_evaluator([make_exact_match_evaluator()])  # type: ignore[list-item]


@pytest.mark.parametrize("factory", [make_all_pass_evaluator, make_any_pass_evaluator])
def test_all_pass_and_any_pass_refuse_weights_meant_for_weighted(factory: Any) -> None:
    with pytest.raises(ValueError, match=r"takes evaluators without weights.*\(exact_match, 2\)"):
        factory([(make_exact_match_evaluator(), 2)])


def test_a_composite_passes_each_child_only_the_arguments_it_declares() -> None:
    seen: list[dict[str, Any]] = []

    def question_mentioned(output: Any, input: dict[str, Any]) -> bool:  # noqa: A002
        seen.append({"output": output, "input": input})
        return input["question"] in output

    weighted = make_weighted_evaluator({question_mentioned: 1})

    result = weighted("cats are mammals", expect("x"), {"question": "cats"}, {}, None)

    assert result.score == 1.0
    assert seen == [{"output": "cats are mammals", "input": {"question": "cats"}}]


def test_a_composite_passes_expected_to_a_child_asking_for_reference() -> None:
    def matches(output: Any, reference: dict[str, Any]) -> bool:
        return bool(output == reference["expected_output"])

    assert make_all_pass_evaluator([matches])("a", expect("a")).label == "pass"


def test_a_composite_refuses_a_child_with_a_parameter_evalwire_cannot_bind() -> None:
    def needs_rubric(output: Any, rubric: str) -> bool:
        return True

    with pytest.raises(ValueError, match="rubric"):
        make_all_pass_evaluator([needs_rubric])


def test_a_composite_reports_a_child_error_as_its_own_naming_the_child() -> None:
    weighted = make_weighted_evaluator({make_exact_match_evaluator(): 1})

    result = weighted("a", {"other": "a"})

    assert result.score is None
    assert result.error is not None and result.error.startswith("exact_match:")


def test_a_composite_reports_a_child_that_raised_as_an_error() -> None:
    def broken(output: Any) -> float:
        raise RuntimeError("boom")

    result = make_any_pass_evaluator([broken])("a", expect("a"))

    assert result.error is not None and "broken raised RuntimeError: boom" in result.error


def test_a_composite_refuses_a_child_score_outside_zero_to_one() -> None:
    def five_stars(output: Any) -> float:
        return 5

    result = make_weighted_evaluator({five_stars: 1})("a", expect("a"))

    assert result.error is not None and "outside [0, 1]" in result.error


def test_a_composite_with_an_async_child_is_async() -> None:
    async def slow_pass(output: Any) -> bool:
        await asyncio.sleep(0)
        return True

    all_pass = make_all_pass_evaluator([make_exact_match_evaluator(), slow_pass])

    assert inspect.iscoroutinefunction(all_pass)
    assert run(all_pass("a", expect("a"))).label == "pass"


def test_a_composite_of_sync_children_is_a_plain_function() -> None:
    all_pass = make_all_pass_evaluator([make_exact_match_evaluator()])

    assert not inspect.iscoroutinefunction(all_pass)


def test_all_pass_fails_naming_the_child_that_failed() -> None:
    all_pass = make_all_pass_evaluator([make_contains_evaluator(), make_exact_match_evaluator()])

    result = all_pass("Paris, France", expect("Paris"))

    assert result.label == "fail"
    assert result.explanation is not None and result.explanation.startswith("exact_match")


def test_all_pass_stops_at_the_first_failure() -> None:
    calls: list[str] = []

    def never(output: Any) -> bool:
        calls.append("never")
        return False

    def expensive(output: Any) -> bool:
        calls.append("expensive")
        return True

    make_all_pass_evaluator([never, expensive])("a", expect("a"))

    assert calls == ["never"]


def test_all_pass_threshold_lets_graded_children_pass_below_one() -> None:
    top_k = make_top_k_evaluator(K=10)
    all_pass = make_all_pass_evaluator([top_k], threshold=0.8)

    assert all_pass(["x", "a"], expect(["a"])).label == "pass"


def test_any_pass_passes_when_one_child_passes() -> None:
    any_pass = make_any_pass_evaluator([make_exact_match_evaluator(), make_contains_evaluator()])

    assert any_pass("Paris, France", expect("Paris")).label == "pass"


def test_any_pass_explains_why_every_child_failed() -> None:
    any_pass = make_any_pass_evaluator([make_exact_match_evaluator(), make_contains_evaluator()])

    result = any_pass("Lyon", expect("Paris"))

    assert result.label == "fail"
    assert result.explanation is not None
    assert "exact_match" in result.explanation and "contains" in result.explanation


def test_composites_need_at_least_one_evaluator() -> None:
    with pytest.raises(ValueError, match="at least one"):
        make_any_pass_evaluator([])


# --- llm_judge -----------------------------------------------------------------------------


@dataclass
class Message:
    """What a chat model's ``invoke`` returns: a message with text content."""

    content: Any


@dataclass
class Grade:
    """A structured answer, as a pydantic model would be."""

    score: float
    explanation: str


class ChatModel:
    """A chat model with LangChain's shape, answering from a script (the edge of the world)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.prompts: list[str] = []
        self.schema: Any = None

    def invoke(self, prompt: str) -> Any:
        self.prompts.append(prompt)
        return self.answer

    def with_structured_output(self, schema: Any) -> ChatModel:
        self.schema = schema
        return self


class AsyncChatModel(ChatModel):
    async def ainvoke(self, prompt: str) -> Any:
        self.prompts.append(prompt)
        return self.answer


TEMPLATE = "Answer: {output}\nReference: {expected_output}\nIs the answer correct?"


def test_llm_judge_fills_the_prompt_with_output_expected_and_input() -> None:
    model = ChatModel("pass")
    judge = make_llm_judge_evaluator(model, "Q: {input[question]} A: {output} R: {expected_output}")

    judge("4", expect(4), {"question": "2+2?"})

    assert model.prompts == ["Q: 2+2? A: 4 R: 4"]


def test_llm_judge_scores_a_verdict_word() -> None:
    judge = make_llm_judge_evaluator(lambda prompt: "Correct.", TEMPLATE)

    result = judge("4", expect("4"))

    assert (result.score, result.label, result.annotator_kind) == (1.0, "correct", "LLM")


def test_llm_judge_reads_the_verdict_on_the_last_line_after_reasoning() -> None:
    answer = "The reference says 4 and the answer says 5.\nVerdict: FAIL"
    judge = make_llm_judge_evaluator(lambda prompt: answer, TEMPLATE)

    result = judge("5", expect("4"))

    assert result.score == 0.0
    assert result.explanation == "The reference says 4 and the answer says 5."


def test_llm_judge_reads_a_json_answer_in_a_code_fence() -> None:
    answer = '```json\n{"explanation": "close enough", "score": 0.75}\n```'
    judge = make_llm_judge_evaluator(lambda prompt: answer, TEMPLATE)

    result = judge("4.1", expect("4"))

    assert (result.score, result.explanation) == (0.75, "close enough")


def test_llm_judge_reads_a_dict_answer() -> None:
    judge = make_llm_judge_evaluator(lambda prompt: {"score": True, "explanation": "ok"}, TEMPLATE)

    assert judge("4", expect("4")).label == "pass"


def test_llm_judge_reads_a_structured_object_answer() -> None:
    judge = make_llm_judge_evaluator(lambda prompt: Grade(0.5, "half right"), TEMPLATE)

    result = judge("4", expect("4"))

    assert (result.score, result.explanation) == (0.5, "half right")


def test_llm_judge_reads_the_content_of_a_chat_message() -> None:
    judge = make_llm_judge_evaluator(ChatModel(Message("yes")), TEMPLATE)

    assert judge("4", expect("4")).score == 1.0


def test_llm_judge_binds_the_output_schema_to_a_model_that_supports_it() -> None:
    model = ChatModel(Grade(1.0, "right"))

    judge = make_llm_judge_evaluator(model, TEMPLATE, output_schema=Grade)

    assert model.schema is Grade
    assert judge("4", expect("4")).score == 1.0


def test_llm_judge_validates_a_json_answer_against_the_output_schema() -> None:
    judge = make_llm_judge_evaluator(lambda prompt: '{"score": 1}', TEMPLATE, output_schema=Grade)

    result = judge("4", expect("4"))

    assert result.error is not None and "Grade" in result.error


def test_llm_judge_on_an_async_model_is_async() -> None:
    async def model(prompt: str) -> str:
        return "pass"

    judge = make_llm_judge_evaluator(model, TEMPLATE)

    assert inspect.iscoroutinefunction(judge)
    assert run(judge("4", expect("4"))).score == 1.0


def test_llm_judge_prefers_ainvoke_on_a_model_that_has_it() -> None:
    judge = make_llm_judge_evaluator(AsyncChatModel("pass"), TEMPLATE)

    assert inspect.iscoroutinefunction(judge)
    assert run(judge("4", expect("4"))).score == 1.0


def test_llm_judge_rescales_scores_from_its_score_range() -> None:
    judge = make_llm_judge_evaluator(lambda prompt: "Score: 4", TEMPLATE, score_range=(1, 5))

    assert judge("4", expect("4")).score == 0.75


def test_llm_judge_reports_a_score_outside_its_range_as_an_error() -> None:
    judge = make_llm_judge_evaluator(lambda prompt: "7", TEMPLATE, score_range=(1, 5))

    result = judge("4", expect("4"))

    assert result.score is None and result.error is not None and "outside" in result.error


def test_llm_judge_understands_the_labels_it_is_given() -> None:
    labels = {"correct": 1.0, "partially correct": 0.5, "incorrect": 0.0}
    judge = make_llm_judge_evaluator(lambda prompt: "Partially correct", TEMPLATE, labels=labels)

    assert judge("4", expect("4")).score == 0.5


def test_llm_judge_reports_a_model_that_raised_as_an_error_not_a_zero() -> None:
    def model(prompt: str) -> str:
        raise TimeoutError("judge timed out")

    result = make_llm_judge_evaluator(model, TEMPLATE)("4", expect("4"))

    assert result.score is None
    assert result.error == "the judge model raised TimeoutError: judge timed out"


def test_llm_judge_reports_an_unreadable_answer_as_an_error_not_a_zero() -> None:
    judge = make_llm_judge_evaluator(lambda prompt: "I am not sure.", TEMPLATE)

    result = judge("4", expect("4"))

    assert result.score is None
    assert result.error is not None and "could not read a verdict" in result.error


def test_llm_judge_with_on_error_raise_lets_the_model_exception_through() -> None:
    def model(prompt: str) -> str:
        raise ConnectionError("rate limited")

    judge = make_llm_judge_evaluator(model, TEMPLATE, on_error="raise")

    with pytest.raises(ConnectionError, match="rate limited"):
        judge("4", expect("4"))


def test_llm_judge_calls_the_error_callback_with_each_failure() -> None:
    failures: list[BaseException] = []
    judge = make_llm_judge_evaluator(lambda prompt: "hmm", TEMPLATE, error_callback=failures.append)

    judge("4", expect("4"))

    assert len(failures) == 1


def test_llm_judge_refuses_upstreams_silent_zero_on_error() -> None:
    with pytest.raises(ValueError, match="record"):
        make_llm_judge_evaluator(lambda prompt: "pass", TEMPLATE, on_error="silent")  # type: ignore[arg-type]


def test_llm_judge_refuses_an_unknown_placeholder_when_the_factory_is_called() -> None:
    with pytest.raises(ValueError, match="answer"):
        make_llm_judge_evaluator(lambda prompt: "pass", "Grade {answer}")


def test_llm_judge_without_expected_output_in_its_prompt_needs_no_expected_value() -> None:
    judge = make_llm_judge_evaluator(lambda prompt: "pass", "Is this polite? {output}")

    assert judge("Thank you!", {}).score == 1.0


def test_llm_judge_does_not_ask_the_model_about_a_none_output() -> None:
    model = ChatModel("pass")

    result = make_llm_judge_evaluator(model, TEMPLATE)(None, expect("4"))

    assert result.score == 0.0 and model.prompts == []


def test_llm_judge_reports_a_sync_model_returning_an_awaitable_as_an_error() -> None:
    async def answer() -> str:
        return "pass"

    judge = make_llm_judge_evaluator(lambda prompt: answer(), TEMPLATE)

    result = judge("4", expect("4"))

    assert result.error is not None and "async def" in result.error
