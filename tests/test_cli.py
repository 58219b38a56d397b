"""The ``evalwire`` command, end to end: real subprocesses on real experiment folders.

Each test writes an experiments folder into ``tmp_path``, runs
``python -m evalwire`` there and checks one behaviour through what a user
sees: the exit status, stdout and stderr, and the ``--json`` results file.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from clihelpers import (
    Result,
    environment,
    evalwire,
    evalwire_json,
    experiment_results,
    plugin_infos,
    rows,
    runs_of,
    write,
    write_experiment,
)

BUILTINS = ("dirs", "files", "callables", "threads", "console", "json", "phoenix")

HALF = """
def half(output):
    return 1.0 if output % 2 == 0 else 0.0
"""


@pytest.fixture
def experiments(tmp_path: Path) -> Path:
    """An experiments folder in the project folder ``tmp_path`` (not created)."""
    return tmp_path / "experiments"


def run(tmp_path: Path, *args: str | Path, **kwargs: Any) -> Result:
    """``evalwire run ARGS`` in ``tmp_path``."""
    return evalwire("run", *args, cwd=tmp_path, **kwargs)


def run_json(tmp_path: Path, *args: str | Path, **kwargs: Any) -> tuple[Result, Any]:
    """``evalwire run ARGS --json PATH`` in ``tmp_path``, and the document it wrote."""
    return evalwire_json("run", *args, cwd=tmp_path, **kwargs)


def summary_line(result: Result, name: str) -> str:
    """The summary table's row for experiment ``name``."""
    statuses = ("passed", "failed", "error")
    lines = [
        line
        for line in result.stdout.splitlines()
        if line.split()[:1] == [name] and any(s in line.split() for s in statuses)
    ]
    assert lines, f"no summary row for {name}\n{result.transcript}"
    return lines[-1]


def assert_usage_error(result: Result, *words: str) -> None:
    """Exit 2, with a readable message naming ``words`` and no traceback."""
    assert result.returncode == 2, result.transcript
    assert "Traceback" not in result.output, result.transcript
    for word in words:
        assert word in result.stderr, f"{word!r} not in stderr\n{result.transcript}"


# -- the command group ---------------------------------------------------------


def test_version_prints_the_version(tmp_path: Path) -> None:
    result = evalwire("--version", cwd=tmp_path)

    assert result.returncode == 0, result.transcript
    assert result.stdout.strip() == f"evalwire {version('evalwire')}"


def test_help_lists_run_and_plugins(tmp_path: Path) -> None:
    result = evalwire("--help", cwd=tmp_path)

    assert result.returncode == 0, result.transcript
    commands = result.stdout.split("Commands:")[1]
    assert re.search(r"^\s+run\s", commands, re.M), result.transcript
    assert re.search(r"^\s+plugins\s", commands, re.M), result.transcript


# -- running experiments -------------------------------------------------------


def test_passing_experiment_exits_0_and_prints_its_name_and_mean_score(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "echo")

    result = run(tmp_path, "-e", experiments)

    assert result.returncode == 0, result.transcript
    row = summary_line(result, "echo")
    assert "passed" in row.split()
    assert "1.00" in row.split(), row


def test_summary_shows_the_mean_score(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "halves", evaluators={"half": HALF}, dataset=rows(4))

    result = run(tmp_path, "-e", experiments)

    assert result.returncode == 0, result.transcript
    # 0.5 or 0.50 as a number of its own (not a duration such as 0.5s).
    assert re.search(r"(?<![\d.])0\.50?(?![\d.s])", summary_line(result, "halves"))


def test_relative_experiments_folder_is_relative_to_the_current_folder(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "echo")

    result = run(tmp_path, "-e", "experiments")

    assert result.returncode == 0, result.transcript
    assert "passed" in summary_line(result, "echo").split()


def test_missing_experiments_folder_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    result = run(tmp_path, "-e", "nowhere")

    assert_usage_error(result, "nowhere")
    assert len(result.stderr.strip().splitlines()) == 1, result.transcript


def test_folder_without_any_task_is_a_usage_error_not_zero_experiments(
    tmp_path: Path, experiments: Path
) -> None:
    write(experiments / "notes" / "README.md", "no task here\n")
    write(experiments / "helper.py", "def task(input):\n    return 1\n")

    result = run(tmp_path, "-e", experiments)

    assert_usage_error(result, str(experiments), "task.py")


def test_unknown_name_is_a_usage_error_listing_the_known_names(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "alpha")
    write_experiment(experiments, "omega")

    result = run(tmp_path, "-e", experiments, "--name", "zeta")

    assert_usage_error(result, "zeta", "alpha", "omega")


def test_task_failing_at_import_fails_its_experiment_and_names_file_error_and_line(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(
        experiments,
        "broken",
        task="""
        import math

        ratio = 1 / 0

        def task(input):
            return input["x"]
        """,
    )
    write_experiment(experiments, "healthy")

    result = run(tmp_path, "-e", experiments)

    assert result.returncode == 1, result.transcript
    assert "Traceback" not in result.output, result.transcript
    [message] = [line for line in result.stderr.splitlines() if "broken" in line]
    assert str(experiments / "broken" / "task.py") in message, message
    assert "ZeroDivisionError" in message, message
    assert "line 3" in message, message
    assert "passed" in summary_line(result, "healthy").split()
    assert "1.00" in summary_line(result, "healthy").split()


def test_evaluator_file_without_its_callable_fails_the_experiment_naming_the_file(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(
        experiments,
        "misnamed",
        evaluators={
            "scored": "def score(output):\n    return 1.0\n",
        },
    )

    result = run(tmp_path, "-e", experiments)

    assert result.returncode == 1, result.transcript
    assert str(experiments / "misnamed" / "scored.py") in result.stderr, result.transcript
    assert "'scored'" in result.stderr, result.transcript
    assert "Traceback" not in result.output, result.transcript


def test_task_raising_on_one_example_fails_the_experiment_and_scores_the_others(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(
        experiments,
        "flaky",
        task="""
        def task(input):
            if input["x"] == 1:
                raise ValueError("cannot handle one")
            return input["x"]
        """,
    )

    result, doc = run_json(tmp_path, "-e", experiments, "--retries", "0")

    assert result.returncode == 1, result.transcript
    assert "ValueError: cannot handle one" in result.output, result.transcript
    [flaky] = experiment_results(doc)
    assert flaky["status"] == "failed"
    assert (flaky["completed"], flaky["task_errors"]) == (3, 1)
    assert flaky["scores"]["exact_match"] == {"mean": 1.0, "count": 2, "errors": 0}
    errors = {r["example_id"]: r["error"] for r in runs_of(doc, "flaky")}
    assert errors == {"ex0": None, "ex1": "ValueError: cannot handle one", "ex2": None}


# -- selecting and sampling ------------------------------------------------------


def test_name_runs_only_the_named_experiment(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "alpha")
    write_experiment(experiments, "omega")

    result, doc = run_json(tmp_path, "-e", experiments, "--name", "omega")

    assert result.returncode == 0, result.transcript
    assert [e["name"] for e in experiment_results(doc)] == ["omega"]
    assert "alpha" not in result.stdout


def test_repetitions_run_each_example_that_many_times(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo", dataset=rows(2))

    result, doc = run_json(tmp_path, "-e", experiments, "--repetitions", "3")

    assert result.returncode == 0, result.transcript
    pairs = sorted((r["example_id"], r["repetition"]) for r in runs_of(doc, "echo"))
    assert pairs == [(e, n) for e in ("ex0", "ex1") for n in (1, 2, 3)]


def test_dry_run_n_runs_exactly_n_examples(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo", dataset=rows(5))

    result, doc = run_json(tmp_path, "-e", experiments, "--dry-run", "2")

    assert result.returncode == 0, result.transcript
    [echo] = experiment_results(doc)
    assert echo["dry_run"] is True
    assert len(runs_of(doc, "echo")) == 2


def test_dry_run_without_a_number_runs_one_example(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo", dataset=rows(5))

    # --dry-run between other options must not swallow the next one.
    result, doc = run_json(tmp_path, "--dry-run", "-e", experiments)

    assert result.returncode == 0, result.transcript
    [echo] = experiment_results(doc)
    assert echo["dry_run"] is True
    assert len(runs_of(doc, "echo")) == 1


# -- timeouts and retries ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_timeout_stops_waiting_for_a_slow_task(
    tmp_path: Path, experiments: Path, kind: str
) -> None:
    task = {
        "sync": "import time\n\ndef task(input):\n    time.sleep(5)\n    return 1\n",
        "async": "import asyncio\n\nasync def task(input):\n    await asyncio.sleep(5)\n",
    }[kind]
    write_experiment(experiments, "slow", task=task, dataset=rows(1))

    result, doc = run_json(tmp_path, "-e", experiments, "--timeout", "0.2", "--retries", "0")

    assert result.returncode == 1, result.transcript
    [slow] = runs_of(doc, "slow")
    assert slow["error"].startswith("TimeoutError"), slow
    assert "TimeoutError" in result.stderr, result.transcript
    # The whole command, interpreter exit included, must not wait for the task.
    assert result.duration < 4, result.transcript


def test_retries_call_a_failing_task_again_until_it_succeeds(
    tmp_path: Path, experiments: Path
) -> None:
    calls = tmp_path / "calls.txt"
    write_experiment(
        experiments,
        "shaky",
        dataset=rows(1),
        task=f"""
        from pathlib import Path

        CALLS = Path({str(calls)!r})

        def task(input):
            with CALLS.open("a") as fh:
                fh.write("call\\n")
            if len(CALLS.read_text().splitlines()) <= 2:
                raise ConnectionError("try again")
            return input["x"]
        """,
    )
    write(tmp_path / "evalwire.toml", "backoff = 0.01\n")

    result, doc = run_json(tmp_path, "-e", experiments, "--retries", "2")

    assert result.returncode == 0, result.transcript
    [shaky] = runs_of(doc, "shaky")
    assert (shaky["error"], shaky["attempts"]) == (None, 3)
    assert len(calls.read_text().splitlines()) == 3


def test_task_failing_more_often_than_retries_allow_errors(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(
        experiments,
        "down",
        dataset=rows(1),
        task="""
        def task(input):
            raise ConnectionError("still down")
        """,
    )
    write(tmp_path / "evalwire.toml", "backoff = 0.01\n")

    result, doc = run_json(tmp_path, "-e", experiments, "--retries", "1")

    assert result.returncode == 1, result.transcript
    [down] = runs_of(doc, "down")
    assert (down["error"], down["attempts"]) == ("ConnectionError: still down", 2)


# -- configuration ---------------------------------------------------------------------


def test_config_file_in_the_project_folder_applies(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo", dataset=rows(2))
    write(tmp_path / "evalwire.toml", "repetitions = 2\n")

    result, doc = run_json(tmp_path, "-e", experiments)

    assert result.returncode == 0, result.transcript
    assert len(runs_of(doc, "echo")) == 4


def test_config_file_gives_the_experiments_folder(tmp_path: Path, experiments: Path) -> None:
    write_experiment(tmp_path / "evals", "echo")
    write(tmp_path / "evalwire.toml", 'experiments_dir = "evals"\n')

    result = run(tmp_path)

    assert result.returncode == 0, result.transcript
    assert "passed" in summary_line(result, "echo").split()


def test_command_line_overrides_the_config_file(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo", dataset=rows(2))
    write(tmp_path / "evalwire.toml", "repetitions = 2\n")

    result, doc = run_json(tmp_path, "-e", experiments, "--repetitions", "1")

    assert result.returncode == 0, result.transcript
    assert len(runs_of(doc, "echo")) == 2


def test_pyproject_tool_evalwire_table_is_read(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo", dataset=rows(2))
    write(
        tmp_path / "pyproject.toml",
        """
        [project]
        name = "my-evals"

        [tool.evalwire]
        repetitions = 2
        """,
    )

    result, doc = run_json(tmp_path, "-e", experiments)

    assert result.returncode == 0, result.transcript
    assert len(runs_of(doc, "echo")) == 4


def test_missing_config_file_is_a_usage_error_naming_it(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo")

    result = run(tmp_path, "-e", experiments, "--config", "missing.toml")

    assert_usage_error(result, "missing.toml")


def test_malformed_config_file_is_a_usage_error_naming_it(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "echo")
    write(tmp_path / "evalwire.toml", "repetitions = = 2\n")

    result = run(tmp_path, "-e", experiments)

    assert_usage_error(result, str(tmp_path / "evalwire.toml"))


def test_config_setting_of_the_wrong_type_is_a_usage_error_naming_it(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "echo")
    write(tmp_path / "evalwire.toml", 'repetitions = "two"\n')

    result = run(tmp_path, "-e", experiments)

    assert_usage_error(result, "evalwire.toml", "repetitions")


def test_metadata_option_reaches_the_results(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo")

    result, doc = run_json(
        tmp_path, "-e", experiments, "--metadata", "team=search", "--metadata", "run=7"
    )

    assert result.returncode == 0, result.transcript
    [echo] = experiment_results(doc)
    assert echo["metadata"] == {"team": "search", "run": "7"}


def test_malformed_metadata_is_a_usage_error(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo")

    result = run(tmp_path, "-e", experiments, "--metadata", "team")

    assert_usage_error(result, "--metadata", "team")


def test_unknown_option_is_a_usage_error(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo")

    result = run(tmp_path, "-e", experiments, "--repetitons", "2")

    assert_usage_error(result, "--repetitons")


# -- plugins ---------------------------------------------------------------------------


def test_plugins_lists_the_builtin_plugins_from_the_evalwire_distribution(
    tmp_path: Path,
) -> None:
    result = evalwire("plugins", cwd=tmp_path)

    assert result.returncode == 0, result.transcript
    listed = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    for name in BUILTINS:
        assert listed[name][:2] == ["evalwire", version("evalwire")], result.transcript


def test_plugins_json_gives_name_distribution_version_and_hooks(tmp_path: Path) -> None:
    infos = plugin_infos(cwd=tmp_path)

    for name in BUILTINS:
        info = infos[name]
        assert set(info) >= {"name", "distribution", "version", "hooks"}
        assert (info["distribution"], info["version"]) == ("evalwire", version("evalwire"))
        assert info["hooks"] and all(h.startswith("evalwire_") for h in info["hooks"])
    assert infos["dirs"]["hooks"] == ["evalwire_discover"]
    assert infos["threads"]["hooks"] == ["evalwire_make_executor"]


def test_blocked_plugin_is_not_listed(tmp_path: Path) -> None:
    infos = plugin_infos("-p", "no:console", cwd=tmp_path)

    assert "console" not in infos
    assert set(BUILTINS) - {"console"} <= set(infos)


def test_plugin_module_given_with_p_is_listed_and_its_hooks_are_called(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "echo")
    write(
        tmp_path / "lib" / "finish_log.py",
        """
        from pathlib import Path

        import evalwire

        @evalwire.hookimpl
        def evalwire_experiment_finish(experiment, result):
            with Path("finished.txt").open("a") as fh:
                fh.write(f"{result.name} {result.status} {result.completed}\\n")
        """,
    )
    env = environment(pythonpath=[tmp_path / "lib"])

    infos = plugin_infos("-p", "finish_log", cwd=tmp_path, env=env)
    result = run(tmp_path, "-e", experiments, "-p", "finish_log", env=env)

    assert infos["finish_log"]["hooks"] == ["evalwire_experiment_finish"]
    assert result.returncode == 0, result.transcript
    assert (tmp_path / "finished.txt").read_text() == "echo passed 3\n"


def test_trace_plugins_prints_hook_calls_to_stderr(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "echo")

    result = run(tmp_path, "-e", experiments, env=environment(EVALWIRE_TRACE_PLUGINS="1"))

    assert result.returncode == 0, result.transcript
    assert "evalwire_discover" in result.stderr, result.transcript
    assert "evalwire_experiment_finish" in result.stderr, result.transcript
    assert "evalwire_discover" not in result.stdout


def test_plugin_module_failing_to_import_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "lib" / "broken_plugin.py", "import does_not_exist_anywhere\n")

    result = evalwire(
        "-p",
        "broken_plugin",
        "plugins",
        cwd=tmp_path,
        env=environment(pythonpath=[tmp_path / "lib"]),
    )

    assert_usage_error(result, "broken_plugin", "does_not_exist_anywhere")


def test_missing_plugin_module_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    result = evalwire("-p", "no_such_plugin_module", "plugins", cwd=tmp_path)

    assert_usage_error(result, "no_such_plugin_module")


def test_plugin_implementing_an_unknown_hook_is_a_usage_error_naming_plugin_and_hook(
    tmp_path: Path,
) -> None:
    write(
        tmp_path / "lib" / "bogus_plugin.py",
        """
        import evalwire

        @evalwire.hookimpl
        def evalwire_bogus(config):
            pass
        """,
    )

    result = evalwire(
        "-p",
        "bogus_plugin",
        "plugins",
        cwd=tmp_path,
        env=environment(pythonpath=[tmp_path / "lib"]),
    )

    assert_usage_error(result, "bogus_plugin", "evalwire_bogus")


def test_plugin_hook_with_an_unknown_argument_is_a_usage_error_naming_it(
    tmp_path: Path,
) -> None:
    write(
        tmp_path / "lib" / "wrong_args.py",
        """
        import evalwire

        @evalwire.hookimpl
        def evalwire_discover(config, colour):
            return []
        """,
    )

    result = evalwire(
        "-p",
        "wrong_args",
        "plugins",
        cwd=tmp_path,
        env=environment(pythonpath=[tmp_path / "lib"]),
    )

    assert_usage_error(result, "wrong_args", "colour")
