"""``evalwire.testing``: the pytest plugin plugin authors test with.

The fixtures are used here directly (this module opts in with
``pytest_plugins``), and through ``pytester`` as a plugin author's own test
file would use them, opted in with ``-p evalwire.testing``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from evalwire import Example, hookimpl

if TYPE_CHECKING:
    # Imported at run time only inside tests: importing it here, before pytest
    # loads it as a plugin, would keep pytest from assertion-rewriting it.
    from evalwire.testing import EvalwireProject

pytest_plugins = ["pytester", "evalwire.testing"]

RunEvalwire = Any  # the fixtures' callables, as tests see them

ECHO = """
def task(input):
    return input["x"]
"""

EXACT = """
def exact_match(output, expected):
    return output == expected["x"]
"""

BROKEN = """
def task(input):
    raise RuntimeError("model is down")
"""


def rows(*values: int, expected: int | None = None) -> list[dict[str, Any]]:
    """Rows whose input is ``x``; the expected ``x`` is the same unless given."""
    return [
        {"id": f"r{v}", "input": {"x": v}, "expected": {"x": v if expected is None else expected}}
        for v in values
    ]


def echo(project: EvalwireProject, name: str = "echo", **kwargs: Any) -> Path:
    """An experiment whose task echoes ``x``, scored by exact match, on three rows."""
    kwargs.setdefault("rows", rows(1, 2, 3))
    return project.experiment(name, task=ECHO, evaluators={"exact_match": EXACT}, **kwargs)


class Doubler:
    """A task adapter plugin: every task's output is doubled."""

    @hookimpl
    def evalwire_adapt_task(self, task: Any) -> Any:
        async def doubled(example: Example) -> Any:
            return task(example.input) * 2

        return doubled


class Recorder:
    """A reporter plugin that notes what it heard."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    @hookimpl
    def evalwire_run_complete(self, run: Any) -> None:
        self.heard.append(f"run {run.example_id}")

    @hookimpl
    def evalwire_experiment_finish(self, result: Any) -> None:
        self.heard.append(f"finish {result.name} {result.status}")


# -- the project -------------------------------------------------------------------------


def test_project_writes_task_evaluators_and_the_dataset_into_the_experiment_folder(
    evalwire_project: EvalwireProject,
) -> None:
    folder = echo(evalwire_project)

    assert folder == evalwire_project.experiments_dir / "echo"
    assert evalwire_project.experiments_dir == evalwire_project.path / "experiments"
    assert sorted(p.name for p in folder.iterdir()) == [
        "dataset.jsonl",
        "exact_match.py",
        "task.py",
    ]
    assert (folder / "task.py").read_text() == ECHO.lstrip("\n")
    lines = (folder / "dataset.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == rows(1, 2, 3)


def test_project_dedents_sources_so_tests_can_indent_them(
    evalwire_project: EvalwireProject,
) -> None:
    folder = evalwire_project.experiment(
        "indented",
        task="""
            def task(input):
                return input
        """,
    )

    assert (folder / "task.py").read_text() == "def task(input):\n    return input\n"


def test_project_can_put_the_dataset_beside_the_experiments_folder(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    folder = echo(evalwire_project, dataset_location="datasets")

    outcome = run_evalwire(evalwire_project)

    assert not (folder / "dataset.jsonl").exists()
    assert (evalwire_project.path / "datasets" / "echo.jsonl").is_file()
    outcome.assert_passed()
    assert [r.example_id for r in outcome.runs("echo")] == ["r1", "r2", "r3"]


def test_project_rejects_a_row_without_input(evalwire_project: EvalwireProject) -> None:
    with pytest.raises(ValueError, match="row 2 must be a mapping with an 'input' key"):
        evalwire_project.experiment("bad", rows=[{"input": {}}, {"question": "?"}])


def test_project_config_is_the_runs_evalwire_toml(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project, rows=None)
    evalwire_project.dataset("shared", rows(7, 8))
    evalwire_project.config(
        """
        repetitions = 2

        [experiments.echo]
        dataset = "shared"
        """
    )

    outcome = run_evalwire(evalwire_project)

    outcome.assert_passed()
    assert [(r.example_id, r.repetition) for r in outcome.runs("echo")] == [
        ("r7", 1),
        ("r7", 2),
        ("r8", 1),
        ("r8", 2),
    ]


def test_project_folder_is_the_project_root_so_runs_leave_nothing_outside_it(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project)

    outcome = run_evalwire(evalwire_project)

    assert outcome.config is not None
    assert outcome.config.root == evalwire_project.path
    assert outcome.config.config_path == evalwire_project.path / "evalwire.toml"


# -- running in-process --------------------------------------------------------------------


def test_in_process_run_returns_results_runs_outputs_and_scores(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project, rows=rows(1, 2, 3, 4, expected=2))

    outcome = run_evalwire(evalwire_project)

    from evalwire.testing import Outcome

    assert isinstance(outcome, Outcome)
    assert outcome.exit_code == 0
    assert outcome.names == ["echo"]
    assert outcome.result("echo").status == "passed"
    assert outcome.outputs("echo") == [1, 2, 3, 4]
    assert outcome.scores("echo") == {"exact_match": 0.25}
    outcome.assert_score("echo", "exact_match", 0.25)


def test_in_process_run_registers_the_plugin_objects_given(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project)
    recorder = Recorder()

    outcome = run_evalwire(evalwire_project, plugins=[Doubler(), ("recorder", recorder)])

    assert outcome.outputs("echo") == [2, 4, 6]
    outcome.assert_score("echo", "exact_match", 0.0)
    assert sorted(recorder.heard) == ["finish echo passed", "run r1", "run r2", "run r3"]


def test_in_process_run_accepts_a_plugin_already_loaded_through_its_entry_point(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    # A plugin author's module is usually installed, so its entry point loads it too.
    import evalwire.builtin.callables

    echo(evalwire_project)

    outcome = run_evalwire(evalwire_project, plugins=[evalwire.builtin.callables])

    outcome.assert_passed()


def test_in_process_run_selects_experiments_by_name(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project, "first")
    echo(evalwire_project, "second")

    outcome = run_evalwire(evalwire_project, "second")

    assert outcome.names == ["second"]


def test_in_process_run_takes_evalwire_settings_as_keywords(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project, rows=rows(*range(10)))

    outcome = run_evalwire(evalwire_project, dry_run=3, seed=1)

    assert outcome.result("echo").dry_run
    assert len(outcome.runs("echo")) == 3


def test_in_process_run_accepts_an_experiments_folder(
    tmp_path: Path, run_evalwire: RunEvalwire
) -> None:
    from evalwire.testing import EvalwireProject

    project = EvalwireProject(tmp_path / "project")
    echo(project)

    outcome = run_evalwire(project.experiments_dir)

    outcome.assert_passed()
    assert outcome.names == ["echo"]


def test_in_process_run_blocks_the_console_reporter_unless_told_otherwise(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project)

    quiet = run_evalwire(evalwire_project)
    loud = run_evalwire(evalwire_project, plugin_args=())

    assert quiet.stdout == ""
    assert "exact_match" in loud.stdout and "passed" in loud.stdout


def test_in_process_usage_error_is_exit_2_with_its_message(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project)

    outcome = run_evalwire(evalwire_project, "missing")

    outcome.assert_exit(2)
    assert outcome.error is not None and "no experiment named 'missing'" in outcome.error
    assert "evalwire: error: no experiment named 'missing'" in outcome.stderr
    assert outcome.results == []


def test_in_process_bad_setting_is_exit_2(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project)

    assert run_evalwire(evalwire_project, concurrency=0).exit_code == 2
    assert "unknown setting(s): colour" in (run_evalwire(evalwire_project, colour=1).error or "")


def test_in_process_plugin_with_an_unknown_hook_is_exit_2_naming_it(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    class Typo:
        @hookimpl
        def evalwire_adapt_tsak(self, task: Any) -> Any:
            return None

    echo(evalwire_project)

    outcome = run_evalwire(evalwire_project, plugins=[("typo", Typo())])

    outcome.assert_exit(2)
    assert "evalwire_adapt_tsak" in (outcome.error or "")


def test_in_process_failing_task_is_exit_1(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    evalwire_project.experiment("broken", task=BROKEN, rows=rows(1))

    outcome = run_evalwire(evalwire_project, retries=0)

    outcome.assert_exit(1)
    assert outcome.result("broken").task_errors == 1
    assert "model is down" in (outcome.runs("broken")[0].error or "")


# -- assertion messages ----------------------------------------------------------------------


def test_assert_passed_says_which_experiment_failed_why_and_what_was_printed(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    evalwire_project.experiment("broken", task=BROKEN, rows=rows(1))

    outcome = run_evalwire(evalwire_project, retries=0, plugin_args=())

    with pytest.raises(AssertionError) as caught:
        outcome.assert_passed()
    message = str(caught.value)
    assert "expected evalwire to pass, but it exited 1" in message
    assert "experiment 'broken' failed" in message
    assert "example r1 (repetition 1) task: RuntimeError: model is down" in message
    assert "--- stdout\n" in message and "broken" in message.split("--- stdout\n")[1]


def test_assert_score_shows_every_score_when_the_mean_is_off(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project, rows=rows(1, 2, expected=1))
    outcome = run_evalwire(evalwire_project)

    with pytest.raises(AssertionError) as caught:
        outcome.assert_score("echo", "exact_match", 1.0)

    message = str(caught.value)
    assert "experiment 'echo', evaluator 'exact_match': mean score 0.5" in message
    assert "expected 1.0" in message
    assert "exact_match: mean 0.5 (2 scored, 0 errors)" in message
    outcome.assert_score("echo", "exact_match", 0.6, abs=0.1)


def test_assert_score_names_what_exists_when_the_experiment_or_evaluator_does_not(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project)
    outcome = run_evalwire(evalwire_project)

    with pytest.raises(AssertionError, match=r"no experiment named 'ecko' ran \(found: 'echo'\)"):
        outcome.assert_score("ecko", "exact_match", 1.0)
    with pytest.raises(AssertionError, match=r"no scores from evaluator 'exact'.*has: exact_match"):
        outcome.assert_score("echo", "exact", 1.0)
    with pytest.raises(LookupError, match="no experiment named 'ecko'"):
        outcome.result("ecko")


def test_assert_exit_shows_the_transcript(
    evalwire_project: EvalwireProject, run_evalwire: RunEvalwire
) -> None:
    echo(evalwire_project)
    outcome = run_evalwire(evalwire_project, "missing")

    with pytest.raises(AssertionError) as caught:
        outcome.assert_exit(0)

    message = str(caught.value)
    assert message.startswith("expected evalwire to exit 0, but it exited 2")
    assert "--- stderr\nevalwire: error: no experiment named 'missing'" in message


# -- running as a subprocess ---------------------------------------------------------------


def test_subprocess_run_reads_results_back_from_json(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: RunEvalwire
) -> None:
    echo(evalwire_project, rows=rows(1, 2, 3, 4, expected=2))

    outcome = run_evalwire_subprocess(evalwire_project)

    outcome.assert_passed()
    assert outcome.document is not None and outcome.document["exit_status"] == 0
    assert outcome.outputs("echo") == [1, 2, 3, 4]
    assert [r.example.input for r in outcome.runs("echo")] == [{"x": i} for i in (1, 2, 3, 4)]
    assert outcome.scores("echo") == {"exact_match": 0.25}
    outcome.assert_score("echo", "exact_match", 0.25)
    assert "echo" in outcome.stdout  # the console reporter is on, as for a user


def test_subprocess_run_passes_cli_arguments_and_loads_a_plugin_module_from_pythonpath(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: RunEvalwire, tmp_path: Path
) -> None:
    echo(evalwire_project)
    evalwire_project.write(
        "plugins/tripler.py",
        """
        import evalwire

        @evalwire.hookimpl
        def evalwire_adapt_task(task):
            async def tripled(example):
                return task(example.input) * 3
            return tripled
        """,
    )

    outcome = run_evalwire_subprocess(
        evalwire_project,
        "-p",
        "tripler",
        "--repetitions",
        "2",
        pythonpath=[evalwire_project.path / "plugins"],
    )

    outcome.assert_passed()
    assert outcome.outputs("echo") == [3, 3, 6, 6, 9, 9]


def test_subprocess_usage_error_is_exit_2_with_its_message(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: RunEvalwire
) -> None:
    echo(evalwire_project)

    outcome = run_evalwire_subprocess(evalwire_project, "--name", "missing")

    outcome.assert_exit(2)
    assert outcome.results == []
    assert outcome.error is not None and "no experiment named 'missing'" in outcome.error


def test_subprocess_reads_the_json_file_the_arguments_name(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: RunEvalwire
) -> None:
    echo(evalwire_project)

    outcome = run_evalwire_subprocess(evalwire_project, "--json", "out/results.json")

    outcome.assert_passed()
    assert (evalwire_project.path / "out" / "results.json").is_file()
    assert outcome.names == ["echo"]


def test_subprocess_with_the_json_reporter_blocked_has_no_results(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: RunEvalwire
) -> None:
    echo(evalwire_project)

    outcome = run_evalwire_subprocess(evalwire_project, "-p", "no:json")

    outcome.assert_passed()
    assert outcome.document is None and outcome.results == []


def test_subprocess_environment_can_set_and_remove_variables(
    evalwire_project: EvalwireProject,
    run_evalwire_subprocess: RunEvalwire,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evalwire_project.experiment(
        "env",
        task="""
            import os

            def task(input):
                return [os.environ.get("GIVEN"), os.environ.get("INHERITED")]
        """,
        rows=rows(1),
    )
    monkeypatch.setenv("INHERITED", "yes")

    kept = run_evalwire_subprocess(evalwire_project, env={"GIVEN": "1"})
    removed = run_evalwire_subprocess(evalwire_project, env={"INHERITED": None})

    assert kept.outputs("env") == [["1", "yes"]]
    assert removed.outputs("env") == [[None, None]]


# -- as a plugin author's test file uses it (pytester) -------------------------------------

# This module imported evalwire.testing already, so the inner sessions cannot
# assertion-rewrite it; a plugin author's session imports it fresh.
_already_imported = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")

AUTHOR_TESTS = '''
from evalwire import hookimpl

TASK = """
def task(input):
    return input["word"]
"""

SHOUTED = """
def shouted(output):
    return output.isupper()
"""


class Shout:
    @hookimpl
    def evalwire_adapt_task(self, task):
        async def shout(example):
            return task(example.input).upper()
        return shout


def test_in_process(evalwire_project, run_evalwire):
    evalwire_project.experiment(
        "words",
        task=TASK,
        evaluators={"shouted": SHOUTED},
        rows=[{"input": {"word": "hi"}}, {"input": {"word": "there"}}],
    )
    outcome = run_evalwire(evalwire_project, plugins=[Shout()])
    outcome.assert_passed()
    outcome.assert_score("words", "shouted", 1.0)
    assert outcome.outputs("words") == ["HI", "THERE"]


def test_subprocess(evalwire_project, run_evalwire_subprocess):
    evalwire_project.experiment(
        "words",
        task=TASK,
        evaluators={"shouted": SHOUTED},
        rows=[{"input": {"word": "hi"}}, {"input": {"word": "There"}}],
    )
    outcome = run_evalwire_subprocess(evalwire_project)
    outcome.assert_exit(0)
    outcome.assert_score("words", "shouted", 0.0)
'''


@_already_imported
def test_plugin_authors_test_file_passes_with_the_plugin_opted_in(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_author=AUTHOR_TESTS)

    result = pytester.runpytest("-p", "evalwire.testing", "-p", "no:phoenix")

    result.assert_outcomes(passed=2)


@_already_imported
def test_plugin_authors_can_opt_in_with_pytest_plugins(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["evalwire.testing"]\n')
    pytester.makepyfile(test_author=AUTHOR_TESTS)

    result = pytester.runpytest("-p", "no:phoenix")

    result.assert_outcomes(passed=2)


@_already_imported
def test_fixtures_are_not_active_without_opting_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_author=AUTHOR_TESTS)

    result = pytester.runpytest("-p", "no:phoenix")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'evalwire_project' not found*"])


@_already_imported
def test_a_missed_score_fails_the_authors_test_with_scores_and_transcript(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_author="""
        def test_scores(evalwire_project, run_evalwire):
            evalwire_project.experiment(
                "half",
                task="def task(input):\\n    return input['n']\\n",
                evaluators={"even": "def even(output):\\n    return output % 2 == 0\\n"},
                rows=[{"input": {"n": 1}}, {"input": {"n": 2}}],
            )
            run_evalwire(evalwire_project).assert_score("half", "even", 1.0)
        """
    )

    result = pytester.runpytest("-p", "evalwire.testing", "-p", "no:phoenix")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*experiment 'half', evaluator 'even': mean score 0.5 (2 scored, 0 errors)*",
            "*even: mean 0.5*",
            "*evalwire (in-process) run -e *experiments -> exit 0*",
        ]
    )
    # The helper's own frame is hidden: the failure points at the author's test.
    result.stdout.no_fnmatch_line("*def assert_score*")
