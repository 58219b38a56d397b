"""Evaluators named in evalwire.toml, built from registered factories."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path

import pytest
from clihelpers import evalwire, evalwire_json, runs_of, write, write_experiment

from evalwire import ExperimentRunner, hookimpl
from evalwire.errors import UsageError
from evalwire.evaluators import BUILTIN_EVALUATORS
from evalwire.named_evaluators import build_named


def project(tmp_path: Path, toml: str) -> Path:
    folder = tmp_path / "experiments" / "qa"
    folder.mkdir(parents=True)
    (folder / "task.py").write_text("def task(input):\n    return input['q'].upper()\n")
    rows = [("a", "A"), ("b", "B"), ("c", "x")]
    (folder / "dataset.jsonl").write_text(
        "".join(
            json.dumps({"input": {"q": q}, "expected": {"expected_output": e}}) + "\n"
            for q, e in rows
        )
    )
    (tmp_path / "evalwire.toml").write_text(toml)
    return tmp_path / "experiments"


def run(experiments: Path, **kwargs: object) -> dict[str, float]:
    runner = ExperimentRunner(experiments, plugin_args=("no:console",), **kwargs)  # type: ignore[arg-type]
    try:
        (result,) = runner.run()
    except SystemExit as failed:
        (result,) = failed.results  # type: ignore[attr-defined]
    return {name: summary.mean for name, summary in result.scores.items()}


def test_one_line_of_toml_adds_exact_match(tmp_path: Path) -> None:
    experiments = project(tmp_path, '[experiments.qa]\nevaluators = ["exact_match"]\n')
    assert run(experiments) == {"exact_match": pytest.approx(2 / 3)}


def test_a_table_entry_names_the_evaluator_and_passes_options(tmp_path: Path) -> None:
    toml = (
        "[experiments.qa]\n"
        'evaluators = [{name = "loose", use = "exact_match", case_sensitive = false}]\n'
    )
    assert run(project(tmp_path, toml)) == {"loose": pytest.approx(2 / 3)}


def test_an_unknown_name_is_a_usage_error_listing_the_known_ones(tmp_path: Path) -> None:
    experiments = project(tmp_path, '[experiments.qa]\nevaluators = ["exact_mtch"]\n')
    with pytest.raises(UsageError, match="unknown evaluator 'exact_mtch'; known: .*exact_match"):
        run(experiments)


def test_a_bad_option_is_a_usage_error_naming_the_entry(tmp_path: Path) -> None:
    toml = '[experiments.qa]\nevaluators = [{use = "regex", pattern = "("}]\n'
    with pytest.raises(UsageError, match=r"\[experiments.qa\].evaluators\[0\] \('regex'\)"):
        run(project(tmp_path, toml))


def test_a_plugin_contributes_evaluator_names(tmp_path: Path) -> None:
    class Acme:
        @hookimpl
        def evalwire_register_evaluators(self, register: object) -> None:
            register("always", lambda: lambda output: 1.0)  # type: ignore[operator]

    experiments = project(tmp_path, '[experiments.qa]\nevaluators = ["always"]\n')
    assert run(experiments, plugins=[("acme", Acme())]) == {"always": 1.0}


def test_every_builtin_is_buildable_by_name_with_its_defaults_or_says_what_it_needs() -> None:
    needs_arguments = {"schema", "weighted", "all_pass", "any_pass", "llm_judge"}
    for name in set(BUILTIN_EVALUATORS) - needs_arguments:
        assert callable(build_named([name], BUILTIN_EVALUATORS, "t")[name])
    for name in needs_arguments:
        with pytest.raises(UsageError, match=f"'{name}'"):
            build_named([name], BUILTIN_EVALUATORS, "t")


# -- composites: children given by name -----------------------------------------------

PARIS = {"expected_output": "Paris"}


def lenient(output: str, expected: dict[str, str]) -> bool:
    """An evaluator file's function: no factory has this name."""
    return output.casefold() == expected["expected_output"].casefold()


def test_a_weighted_entry_weighs_the_children_its_table_names() -> None:
    entry = {"name": "overall", "use": "weighted", "evaluators": {"exact_match": 3, "contains": 1}}
    overall = build_named([entry], BUILTIN_EVALUATORS, "t")["overall"]

    result = overall("Paris, France", PARIS)

    assert result.score == pytest.approx(0.25)
    assert result.metadata["weights"] == {"exact_match": 0.75, "contains": 0.25}


def test_a_child_name_finds_an_evaluator_file_of_the_experiment() -> None:
    entry = {"name": "strict", "use": "all_pass", "evaluators": ["lenient"]}
    built = build_named([entry], BUILTIN_EVALUATORS, "t", {"lenient": lenient})

    assert built["strict"]("PARIS", PARIS).label == "pass"
    assert built["strict"]("Rome", PARIS).label == "fail"


def test_a_child_name_finds_another_entry_even_one_written_after_it() -> None:
    entries = [
        {"name": "strict", "use": "all_pass", "evaluators": ["loose"]},
        {"name": "loose", "use": "exact_match", "case_sensitive": False},
    ]
    built = build_named(entries, BUILTIN_EVALUATORS, "t")

    result = built["strict"]("PARIS", PARIS)

    assert result.label == "pass"
    # Reported under the entry's name, not its factory's.
    assert result.metadata["scores"] == {"loose": 1.0}
    assert list(built) == ["strict", "loose"]


def test_an_entry_is_found_before_an_evaluator_file_of_the_same_name() -> None:
    entries = [
        {"name": "lenient", "use": "exact_match"},
        {"name": "strict", "use": "all_pass", "evaluators": ["lenient"]},
    ]
    built = build_named(entries, BUILTIN_EVALUATORS, "t", {"lenient": lenient})

    # The file would pass "PARIS"; the entry that replaces it in the experiment does not.
    assert built["strict"]("PARIS", PARIS).label == "fail"


def test_factory_and_inline_children_are_built_for_the_composite_alone() -> None:
    entry = {
        "name": "strict",
        "use": "all_pass",
        "evaluators": ["contains", {"name": "capital", "use": "regex", "pattern": "^[A-Z]"}],
    }
    built = build_named([entry], BUILTIN_EVALUATORS, "t")

    assert list(built) == ["strict"]
    assert built["strict"]("Paris!", PARIS).metadata["scores"] == {"contains": 1.0, "capital": 1.0}
    assert built["strict"]("paris", PARIS).label == "fail"


def test_an_inline_child_of_a_weighted_table_is_named_by_its_key() -> None:
    children = {
        "exact_match": 1,
        "loose": {"weight": 1, "use": "exact_match", "case_sensitive": False},
    }
    entry = {"name": "overall", "use": "weighted", "evaluators": children}
    overall = build_named([entry], BUILTIN_EVALUATORS, "t")["overall"]

    result = overall("PARIS", PARIS)

    assert result.score == pytest.approx(0.5)
    assert result.metadata["scores"] == {"exact_match": 0.0, "loose": 1.0}


def test_a_weighted_child_given_only_a_weight_table_is_the_named_evaluator() -> None:
    entry = {"name": "overall", "use": "weighted", "evaluators": {"lenient": {"weight": 2}}}
    built = build_named([entry], BUILTIN_EVALUATORS, "t", {"lenient": lenient})

    assert built["overall"]("PARIS", PARIS).score == 1.0


def test_composites_nest_by_name() -> None:
    entries = [
        {"name": "either", "use": "any_pass", "evaluators": ["strict", "lenient"]},
        {"name": "strict", "use": "all_pass", "evaluators": ["exact_match"]},
    ]
    built = build_named(entries, BUILTIN_EVALUATORS, "t", {"lenient": lenient})

    result = built["either"]("PARIS", PARIS)

    assert result.label == "pass"
    assert result.metadata["scores"] == {"strict": 0.0, "lenient": 1.0}


def test_an_async_child_under_another_name_makes_the_composite_async() -> None:
    async def judge(output: str) -> float:
        return 1.0 if output else 0.0

    entry = {"name": "strict", "use": "all_pass", "evaluators": ["careful"]}
    strict = build_named([entry], BUILTIN_EVALUATORS, "t", {"careful": judge})["strict"]

    assert inspect.iscoroutinefunction(strict)
    result = asyncio.run(strict("yes"))
    assert result.label == "pass" and result.metadata["scores"] == {"careful": 1.0}


def test_an_unknown_child_is_a_usage_error_naming_the_entry_and_the_known_names() -> None:
    entry = {"name": "strict", "use": "all_pass", "evaluators": ["exact_match", "lenent"]}
    with pytest.raises(UsageError) as raised:
        build_named([entry], BUILTIN_EVALUATORS, "[experiments.qa]", {"lenient": lenient})

    message = str(raised.value)
    assert "[experiments.qa].evaluators[0] ('strict').evaluators[1]" in message
    assert "unknown evaluator 'lenent'" in message
    assert "this experiment's evaluators: lenient, strict" in message
    assert "registered: all_pass, any_pass, contains, exact_match" in message


def test_an_unknown_child_of_a_weighted_table_names_its_key() -> None:
    entry = {"name": "overall", "use": "weighted", "evaluators": {"exact_mtch": 1}}
    with pytest.raises(UsageError, match=r"\('overall'\).evaluators.exact_mtch: unknown"):
        build_named([entry], BUILTIN_EVALUATORS, "t")


def test_a_composite_containing_itself_is_a_usage_error() -> None:
    entry = {"name": "strict", "use": "all_pass", "evaluators": ["exact_match", "strict"]}
    with pytest.raises(UsageError, match=r"'strict'\): a composite cannot contain itself: strict"):
        build_named([entry], BUILTIN_EVALUATORS, "t")


def test_a_cycle_through_other_entries_is_a_usage_error_naming_the_chain() -> None:
    entries = [
        {"name": "a", "use": "all_pass", "evaluators": ["b"]},
        {"name": "b", "use": "weighted", "evaluators": {"exact_match": 1, "c": 1}},
        {"name": "c", "use": "any_pass", "evaluators": [{"use": "all_pass", "evaluators": ["a"]}]},
    ]
    with pytest.raises(UsageError, match="cannot contain itself: a -> b -> c -> a"):
        build_named(entries, BUILTIN_EVALUATORS, "t")


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ({"exact_match": -1}, "must be finite and non-negative, not -1"),
        ({"exact_match": 0, "contains": 0}, "must not all be zero"),
        ({"exact_match": "high"}, "must be a number, not 'high'"),
        ({"exact_match": True}, "must be a number, not True"),
        ({"loose": {"use": "exact_match"}}, "give 'loose' a weight"),
    ],
)
def test_a_bad_weight_is_a_usage_error_naming_the_entry(
    weights: dict[str, object], reason: str
) -> None:
    entry = {"name": "overall", "use": "weighted", "evaluators": weights}
    with pytest.raises(UsageError) as raised:
        build_named([entry], BUILTIN_EVALUATORS, "[experiments.qa]")

    assert "[experiments.qa].evaluators[0] ('overall')" in str(raised.value)
    assert reason in str(raised.value)


def test_weighted_children_without_weights_are_a_usage_error() -> None:
    entry = {"name": "overall", "use": "weighted", "evaluators": ["exact_match"]}
    with pytest.raises(UsageError, match="weighted needs a weight for each evaluator.*exact_match"):
        build_named([entry], BUILTIN_EVALUATORS, "t")


def test_weights_given_to_all_pass_are_a_usage_error() -> None:
    entry = {"name": "strict", "use": "all_pass", "evaluators": {"exact_match": 1}}
    with pytest.raises(UsageError, match="all_pass takes evaluators without weights"):
        build_named([entry], BUILTIN_EVALUATORS, "t")


def test_children_that_are_neither_a_list_nor_a_table_are_a_usage_error() -> None:
    entry = {"name": "strict", "use": "all_pass", "evaluators": "exact_match"}
    with pytest.raises(UsageError, match="'evaluators' must be a list of evaluators or a table"):
        build_named([entry], BUILTIN_EVALUATORS, "t")


COMPOSITE_TOML = """
[experiments.qa]
evaluators = [
  "exact_match",
  { name = "overall", use = "weighted", evaluators = { exact_match = 3, lenient = 1 } },
  { name = "strict", use = "all_pass", evaluators = [
    "lenient", { use = "regex", pattern = "^[AB]$" },
  ] },
]
"""

LENIENT = """
def lenient(output, expected):
    return output.casefold() == expected["expected_output"].casefold()
"""


def test_evalwire_run_scores_composites_defined_in_evalwire_toml(tmp_path: Path) -> None:
    dataset = [
        {"id": q, "input": {"q": q}, "expected": {"expected_output": e}}
        for q, e in [("a", "A"), ("b", "b"), ("c", "x")]
    ]
    write_experiment(
        tmp_path / "experiments",
        "qa",
        task="def task(input):\n    return input['q'].upper()\n",
        evaluators={"lenient": LENIENT},
        dataset=dataset,
    )
    write(tmp_path / "evalwire.toml", COMPOSITE_TOML)

    result, document = evalwire_json("run", cwd=tmp_path)

    assert result.returncode == 0, result.transcript
    [experiment] = document["experiments"]
    means = {name: score["mean"] for name, score in experiment["scores"].items()}
    # The file and the named entry score on their own; the regex child does not.
    assert means == {
        "lenient": pytest.approx(2 / 3),
        "exact_match": pytest.approx(1 / 3),
        "overall": pytest.approx((1.0 + 0.25 + 0.0) / 3),
        "strict": pytest.approx(2 / 3),
    }
    by_example = {
        run["example_id"]: {e["name"]: e for e in run["evaluations"]}
        for run in runs_of(document, "qa")
    }
    assert by_example["b"]["overall"]["metadata"] == {
        "scores": {"exact_match": 0.0, "lenient": 1.0},
        "weights": {"exact_match": 0.75, "lenient": 0.25},
    }
    assert by_example["c"]["strict"]["label"] == "fail"
    assert by_example["c"]["strict"]["explanation"].startswith("lenient scored 0.00")


def test_evalwire_run_refuses_a_composite_with_an_unknown_child(tmp_path: Path) -> None:
    write_experiment(tmp_path / "experiments", "qa")
    write(
        tmp_path / "evalwire.toml",
        '[experiments.qa]\nevaluators = [{ name = "strict", use = "all_pass", '
        'evaluators = ["exact_mtch"] }]\n',
    )

    result = evalwire("run", cwd=tmp_path)

    assert result.returncode == 2, result.transcript
    assert "Traceback" not in result.output, result.transcript
    assert "('strict').evaluators[0]: unknown evaluator 'exact_mtch'" in result.stderr
    assert "this experiment's evaluators: exact_match, strict" in result.stderr
