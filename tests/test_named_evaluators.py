"""Evaluators named in evalwire.toml, built from registered factories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
