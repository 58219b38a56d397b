"""The ``gates`` plugin, end to end: ``--fail-under`` and ``fail_under`` in evalwire.toml.

Each test writes experiments into ``tmp_path``, runs ``python -m evalwire run``
there with the plugin loaded by ``-p`` and checks what a user sees: the exit
status, the gates table on stdout, and the reason on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from clihelpers import Result, environment, evalwire, rows, write, write_experiment

GATES = ("-p", "evalwire.builtin.gates")

#: Scores 1 for every row whose x is not a multiple of 3: a mean of 2/3 on rows 0..2.
NOT_THIRD = """
def not_third(output):
    return output % 3 != 0
"""

ALWAYS = """
def always(output):
    return 1.0
"""


@pytest.fixture
def experiments(tmp_path: Path) -> Path:
    """An experiments folder in the project folder ``tmp_path`` (not created)."""
    return tmp_path / "experiments"


def run(tmp_path: Path, *args: str | Path, **kwargs: Any) -> Result:
    """``evalwire run -e experiments ARGS`` in ``tmp_path`` with the gates plugin."""
    return evalwire(
        "run", "-e", "experiments", *GATES, "--retries", "0", *args, cwd=tmp_path, **kwargs
    )


def gate_rows(result: Result) -> dict[tuple[str, str], list[str]]:
    """The gates table: (experiment, evaluator) -> [threshold, measured, verdict...]."""
    lines = result.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("gates")]
    assert starts, f"no gates table\n{result.transcript}"
    header = lines[starts[-1] + 1].split()
    assert header == ["experiment", "evaluator", "threshold", "measured", "verdict"], header
    table: dict[tuple[str, str], list[str]] = {}
    for line in lines[starts[-1] + 2 :]:
        if not line.strip():
            break
        experiment, evaluator, rest = line.split(None, 2)
        op, threshold, measured, mark, verdict = rest.split(None, 4)
        # The mark is a tick or cross, or + and x where stdout cannot encode those.
        assert mark in ("✓", "✗", "+", "x"), line
        table[experiment, evaluator] = [f"{op} {threshold}", measured, verdict]
    return table


def gates_title(result: Result) -> str:
    titles = [line for line in result.stdout.splitlines() if line.startswith("gates")]
    assert titles, result.transcript
    return titles[-1]


# -- --fail-under ----------------------------------------------------------------


def test_met_gate_exits_0_and_shows_pass(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})

    result = run(tmp_path, "--fail-under", "not_third=0.6")

    assert result.returncode == 0, result.transcript
    assert gate_rows(result) == {("qa", "not_third"): [">= 0.6", "0.6667", "pass"]}
    assert "gate missed" not in result.stderr


def test_missed_gate_exits_1_and_shows_threshold_measured_and_verdict(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})

    result = run(tmp_path, "--fail-under", "not_third=0.8")

    assert result.returncode == 1, result.transcript
    assert gate_rows(result) == {("qa", "not_third"): [">= 0.8", "0.6667", "fail"]}
    assert "gates: 0 of 1 passed" in result.stdout


def test_missed_gate_says_why_on_stderr(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})

    result = run(tmp_path, "--fail-under", "not_third=0.8")

    assert "evalwire: gate missed: qa not_third: mean 0.6667, needs >= 0.8" in result.stderr, (
        result.transcript
    )
    assert "Traceback" not in result.output


def test_gate_exactly_met_passes_despite_float_rounding(tmp_path: Path, experiments: Path) -> None:
    # Ten scores of 0.1 sum to 0.9999999999999999: a mean a hair below 0.1.
    scorer = """
    def tenth(output):
        return 0.1
    """
    write_experiment(experiments, "qa", evaluators={"tenth": scorer}, dataset=rows(10))

    result = run(tmp_path, "--fail-under", "tenth=0.1")

    assert result.returncode == 0, result.transcript
    assert gate_rows(result)[("qa", "tenth")][2] == "pass"


def test_gate_applies_to_every_experiment_that_has_the_evaluator(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "one", evaluators={"not_third": NOT_THIRD})
    write_experiment(experiments, "two", evaluators={"not_third": NOT_THIRD, "always": ALWAYS})
    write_experiment(experiments, "three", evaluators={"always": ALWAYS})

    result = run(tmp_path, "--fail-under", "not_third=0.5", "--fail-under", "always=1")

    assert result.returncode == 0, result.transcript
    assert set(gate_rows(result)) == {
        ("one", "not_third"),
        ("two", "not_third"),
        ("two", "always"),
        ("three", "always"),
    }


def test_gate_on_an_evaluator_no_experiment_has_is_missing_and_fails(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})

    result = run(tmp_path, "--fail-under", "acuracy=0.8")

    assert result.returncode == 1, result.transcript
    threshold, measured, verdict = gate_rows(result)[("(none)", "acuracy")]
    assert (threshold, measured) == (">= 0.8", "-")
    assert verdict.startswith("missing"), verdict
    assert "no experiment has an evaluator named 'acuracy'" in result.stderr


def test_one_missed_gate_fails_the_session_even_if_others_pass(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD, "always": ALWAYS})

    result = run(tmp_path, "--fail-under", "always=1", "--fail-under", "not_third=0.9")

    assert result.returncode == 1, result.transcript
    table = gate_rows(result)
    assert table[("qa", "always")][2] == "pass"
    assert table[("qa", "not_third")][2] == "fail"


def test_no_gates_prints_no_table(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa")

    result = run(tmp_path)

    assert result.returncode == 0, result.transcript
    assert "gates" not in result.stdout


def test_gates_table_follows_the_console_summary(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})

    result = run(tmp_path, "--fail-under", "always=0.5")

    summary = result.stdout.index("1 passed in")
    assert result.stdout.index("gates: 1 of 1 passed") > summary, result.transcript


def test_plugin_given_twice_prints_one_table(tmp_path: Path, experiments: Path) -> None:
    # As when the plugin is loaded by its entry point and by -p as well.
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})

    result = run(tmp_path, *GATES, "--fail-under", "always=0.5")

    assert result.returncode == 0, result.transcript
    assert result.stdout.count("gates: 1 of 1 passed") == 1, result.transcript


def test_experiment_that_could_not_run_fails_its_gate(tmp_path: Path, experiments: Path) -> None:
    folder = write_experiment(experiments, "qa", evaluators={"always": ALWAYS})
    (folder / "dataset.jsonl").unlink()

    result = run(tmp_path, "--fail-under", "always=0.5")

    assert result.returncode == 1, result.transcript
    threshold, measured, verdict = gate_rows(result)[("qa", "always")]
    assert measured == "-"
    assert verdict == "fail: experiment could not run", verdict


def test_evaluator_that_always_raises_fails_its_gate_with_no_scores(
    tmp_path: Path, experiments: Path
) -> None:
    broken = """
    def broken(output):
        raise ValueError("no")
    """
    write_experiment(experiments, "qa", evaluators={"broken": broken})

    result = run(tmp_path, "--fail-under", "broken=0")

    assert result.returncode == 1, result.transcript
    assert gate_rows(result)[("qa", "broken")][2] == "fail: no scores (3 evaluation errors)"


def test_dry_run_still_checks_gates_and_says_so(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS}, dataset=rows(20))

    result = run(tmp_path, "--dry-run", "2", "--fail-under", "always=1.5")

    assert result.returncode == 1, result.transcript
    assert gates_title(result) == "gates (dry run): 0 of 1 passed"
    assert gate_rows(result)[("qa", "always")][:2] == [">= 1.5", "1"]


@pytest.mark.parametrize(
    "value", ["always", "always=", "=0.5", "always=high", "always=nan", "always=inf"]
)
def test_malformed_fail_under_is_a_usage_error(
    tmp_path: Path, experiments: Path, value: str
) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})

    result = run(tmp_path, "--fail-under", value)

    assert result.returncode == 2, result.transcript
    assert "--fail-under" in result.stderr
    assert "Traceback" not in result.output


# -- evalwire.toml -------------------------------------------------------------------


def test_experiment_table_gate_applies_to_its_experiment(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})
    write_experiment(experiments, "other", evaluators={"not_third": NOT_THIRD})
    write(
        tmp_path / "evalwire.toml",
        """
        [experiments.qa]
        fail_under = {not_third = 0.9}
    """,
    )

    result = run(tmp_path)

    assert result.returncode == 1, result.transcript
    assert gate_rows(result) == {("qa", "not_third"): [">= 0.9", "0.6667", "fail"]}


def test_experiment_table_gate_that_is_met_exits_0(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})
    write(
        tmp_path / "evalwire.toml",
        """
        [experiments.qa]
        fail_under = {not_third = 0.5}
    """,
    )

    result = run(tmp_path)

    assert result.returncode == 0, result.transcript
    assert gate_rows(result)[("qa", "not_third")][2] == "pass"


def test_experiment_table_gate_on_an_evaluator_it_lacks_is_missing(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})
    write(
        tmp_path / "evalwire.toml",
        """
        [experiments.qa]
        fail_under = {tone = 0.2}
    """,
    )

    result = run(tmp_path)

    assert result.returncode == 1, result.transcript
    verdict = gate_rows(result)[("qa", "tone")][2]
    assert verdict == "missing: experiment 'qa' has no evaluator named 'tone'", verdict


def test_experiment_table_naming_no_experiment_is_missing(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})
    write(
        tmp_path / "evalwire.toml",
        """
        [experiments.qaa]
        fail_under = {always = 0.2}
    """,
    )

    result = run(tmp_path)

    assert result.returncode == 1, result.transcript
    assert "no experiment named 'qaa'" in gate_rows(result)[("qaa", "always")][2]


def test_gates_of_experiments_left_out_with_name_are_not_checked(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})
    write_experiment(experiments, "other", evaluators={"not_third": NOT_THIRD})
    write(
        tmp_path / "evalwire.toml",
        """
        [experiments.other]
        fail_under = {not_third = 0.9}
    """,
    )

    result = run(tmp_path, "--name", "qa")

    assert result.returncode == 0, result.transcript
    assert "gates" not in result.stdout


def test_top_level_gate_applies_to_every_experiment(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "one", evaluators={"not_third": NOT_THIRD})
    write_experiment(experiments, "two", evaluators={"not_third": NOT_THIRD})
    write(
        tmp_path / "evalwire.toml",
        """
        fail_under = {not_third = 0.9}
    """,
    )

    result = run(tmp_path)

    assert result.returncode == 1, result.transcript
    assert set(gate_rows(result)) == {("one", "not_third"), ("two", "not_third")}


def test_experiment_table_beats_the_top_level(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})
    write(
        tmp_path / "evalwire.toml",
        """
        fail_under = {not_third = 0.9}

        [experiments.qa]
        fail_under = {not_third = 0.5}
    """,
    )

    result = run(tmp_path)

    assert result.returncode == 0, result.transcript
    assert gate_rows(result)[("qa", "not_third")][0] == ">= 0.5"


def test_command_line_beats_the_config_file(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})
    write(
        tmp_path / "evalwire.toml",
        """
        [experiments.qa]
        fail_under = {not_third = 0.5}
    """,
    )

    result = run(tmp_path, "--fail-under", "not_third=0.9")

    assert result.returncode == 1, result.transcript
    assert gate_rows(result)[("qa", "not_third")][0] == ">= 0.9"


@pytest.mark.parametrize(
    "toml",
    [
        "[experiments.qa]\nfail_under = 0.8\n",
        "[experiments.qa]\nfail_under = {always = 'high'}\n",
        "[experiments.qa]\nfail_under = {always = true}\n",
        "fail_under = [0.8]\n",
    ],
)
def test_malformed_fail_under_in_the_config_file_is_a_usage_error(
    tmp_path: Path, experiments: Path, toml: str
) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})
    write(tmp_path / "evalwire.toml", toml)

    result = run(tmp_path)

    assert result.returncode == 2, result.transcript
    assert "evalwire.toml" in result.stderr and "fail_under" in result.stderr, result.transcript
    assert "Traceback" not in result.output


# -- for other reporters ---------------------------------------------------------

STASH_READER = """
from evalwire import hookimpl

@hookimpl
def evalwire_session_finish(session, results, exitstatus):
    for gate in session.config.stash.get("gates", []):
        print("GATE", gate.experiment, gate.evaluator, gate.kind, gate.threshold,
              gate.measured, gate.passed)
"""


def test_gate_records_are_in_the_stash_for_other_reporters(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})
    write(tmp_path / "plugins" / "gate_reader.py", STASH_READER)
    env = environment(pythonpath=[tmp_path / "plugins"])

    result = run(tmp_path, "-p", "gate_reader", "--fail-under", "not_third=0.8", env=env)

    assert result.returncode == 1, result.transcript
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("GATE ")]
    assert lines == [["GATE", "qa", "not_third", "fail_under", "0.8", repr(2 / 3), "False"]]
