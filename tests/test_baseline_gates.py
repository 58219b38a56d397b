"""Regression gates: ``--max-regression EVALUATOR=DELTA`` against a ``--baseline`` record.

Each test writes an experiment whose evaluator scores every run with the
number in a file (``score.txt`` in ``tmp_path``), runs ``python -m evalwire
run`` in ``tmp_path`` with the store and the gates plugin, changes the
number, and runs again: the second run is gated against what the first
recorded in the store.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from clihelpers import DIE_ONCE_RECORDED, Result, environment, evalwire, write, write_experiment

PLUGINS = ("-p", "evalwire.builtin.store", "-p", "evalwire.builtin.gates")


def scorer(name: str, score_file: Path) -> str:
    """An evaluator ``name`` scoring every run with the number in ``score_file``."""
    return f"""
    import pathlib

    def {name}(output):
        return float(pathlib.Path({str(score_file)!r}).read_text())
    """


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project in ``tmp_path`` with experiment ``qa`` scored by ``acc`` from ``score.txt``."""
    write(tmp_path / "evalwire.toml", "retries = 0\n")
    write_experiment(
        tmp_path / "experiments", "qa", evaluators={"acc": scorer("acc", score(tmp_path))}
    )
    set_score(tmp_path, 0.9)
    return tmp_path


def score(root: Path) -> Path:
    return root / "score.txt"


def set_score(root: Path, value: float) -> None:
    score(root).write_text(repr(value), encoding="utf-8")


def run(root: Path, *args: str, **kwargs: Any) -> Result:
    return evalwire(*PLUGINS, "run", "-e", "experiments", *args, cwd=root, **kwargs)


def recorded(root: Path) -> list[dict[str, Any]]:
    """Every record of the project's store, oldest first."""
    conn = sqlite3.connect(f"file:{root / '.evalwire' / 'evalwire.db'}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [
            dict(row)
            for row in conn.execute(
                "SELECT id, name, status FROM experiments ORDER BY started_at, rowid"
            )
        ]
    finally:
        conn.close()


def gate_rows(result: Result) -> dict[tuple[str, str, str], list[str]]:
    """The gates table: (experiment, evaluator, kind) -> [threshold, measured, verdict]."""
    lines = result.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("gates")]
    assert starts, f"no gates table\n{result.transcript}"
    header = lines[starts[-1] + 1]
    columns = ["experiment", "evaluator", "kind", "threshold", "measured", "verdict"]
    assert header.split() == columns, header
    at = [header.index(c) for c in columns]
    table: dict[tuple[str, str, str], list[str]] = {}
    for line in lines[starts[-1] + 2 :]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(at, [*at[1:], None], strict=True)]
        mark, verdict = cells[5].split(" ", 1)
        assert mark in ("✓", "✗", "+", "x"), line
        table[cells[0], cells[1], cells[2]] = [cells[3], cells[4], verdict]
    return table


def gate(result: Result, experiment: str = "qa", evaluator: str = "acc") -> list[str]:
    table = gate_rows(result)
    return table[experiment, evaluator, "max_regression"]


# -- comparing with the last record --------------------------------------------------


def test_unchanged_scores_pass_against_the_last_record(project: Path) -> None:
    assert run(project).returncode == 0

    result = run(project, "--max-regression", "acc=0.02")

    assert result.returncode == 0, result.transcript
    assert gate(result) == ["baseline 0.9 − 0.02", "0.9", "pass"]
    assert "gates: 1 of 1 passed" in result.stdout


def test_a_drop_within_the_delta_passes(project: Path) -> None:
    assert run(project).returncode == 0
    set_score(project, 0.88)

    result = run(project, "--max-regression", "acc=0.05")

    assert result.returncode == 0, result.transcript
    assert gate(result) == ["baseline 0.9 − 0.05", "0.88", "pass"]


def test_a_drop_beyond_the_delta_fails_and_says_by_how_much(project: Path) -> None:
    assert run(project).returncode == 0
    baseline_id = recorded(project)[0]["id"]
    set_score(project, 0.8)

    result = run(project, "--max-regression", "acc=0.05")

    assert result.returncode == 1, result.transcript
    assert gate(result) == ["baseline 0.9 − 0.05", "0.8", "fail"]
    assert (
        f"evalwire: gate missed: qa acc: mean 0.8, 0.1 below the baseline 0.9 "
        f"(record {baseline_id[:12]}), more than the 0.05 allowed"
    ) in result.stderr
    assert "Traceback" not in result.output


def test_an_improvement_passes(project: Path) -> None:
    assert run(project).returncode == 0
    set_score(project, 1.0)

    result = run(project, "--max-regression", "acc=0")

    assert result.returncode == 0, result.transcript
    assert gate(result)[2] == "pass"


def test_no_baseline_fails_the_gate_as_missing(project: Path) -> None:
    # The run being gated is recorded too, but is never its own baseline.
    result = run(project, "--max-regression", "acc=0.02")

    assert result.returncode == 1, result.transcript
    threshold, measured, verdict = gate(result)
    assert (threshold, measured) == ("baseline − 0.02", "0.9")
    assert verdict.startswith("missing: no baseline: no finished record of 'qa'"), verdict
    assert "evalwire: gate missed: qa acc: no baseline" in result.stderr


def test_last_is_the_most_recent_finished_record(project: Path) -> None:
    assert run(project).returncode == 0
    set_score(project, 0.5)
    assert run(project).returncode == 0
    set_score(project, 0.52)

    result = run(project, "--max-regression", "acc=0.01")

    assert result.returncode == 0, result.transcript
    assert gate(result)[0] == "baseline 0.5 − 0.01"


def test_last_skips_a_record_that_could_not_run(project: Path) -> None:
    assert run(project).returncode == 0
    dataset = project / "experiments" / "qa" / "dataset.jsonl"
    rows = dataset.read_text()
    dataset.unlink()
    assert run(project).returncode == 1  # recorded with status "error", no scores
    dataset.write_text(rows)

    result = run(project, "--max-regression", "acc=0.02")

    assert [r["status"] for r in recorded(project)] == ["passed", "error", "passed"]
    assert result.returncode == 0, result.transcript
    assert gate(result)[0] == "baseline 0.9 − 0.02"


#: The echo task, but at ``ex1`` it waits until ``ex0`` is recorded and then
#: kills its own process, as ``kill -9`` would: the record is left interrupted.
DIES_AT_EX1 = (
    DIE_ONCE_RECORDED
    + """
def task(input):
    if input["x"] == 1:
        die_once_recorded(1)
    return input["x"]
"""
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_last_skips_an_interrupted_record(project: Path) -> None:
    from evalwire.store import baseline

    set_score(project, 0.5)
    assert run(project).returncode == 0
    task = project / "experiments" / "qa" / "task.py"
    echo = task.read_text()
    write(task, DIES_AT_EX1)
    set_score(project, 0.9)
    killed = run(project, "--task-concurrency", "1")
    assert killed.returncode == -signal.SIGKILL, killed.transcript
    write(task, echo)
    set_score(project, 0.5)

    # Against the interrupted record's 0.9 this would fail; the finished 0.5 is the baseline.
    result = run(project, "--max-regression", "acc=0.1")

    finished, interrupted, newest = recorded(project)
    assert result.returncode == 0, result.transcript
    assert gate(result)[0] == "baseline 0.5 − 0.1"
    assert (finished["status"], interrupted["status"]) == ("passed", "running")  # as stored
    conn = sqlite3.connect(project / ".evalwire" / "evalwire.db")
    try:
        named = baseline.by_id(conn, interrupted["id"], where="the store")
        last = baseline.last(conn, ["qa"], before=float("inf"))
    finally:
        conn.close()
    assert (named.status, named.means) == ("interrupted", {"acc": 0.9})  # what it holds
    assert last["qa"].id == newest["id"]


def test_a_baseline_record_without_the_evaluator_is_missing(project: Path) -> None:
    assert run(project).returncode == 0
    folder = project / "experiments" / "qa"
    write(folder / "tone.py", scorer("tone", score(project)))

    result = run(project, "--max-regression", "tone=0.1")

    assert result.returncode == 1, result.transcript
    first = recorded(project)[0]["id"]
    verdict = gate(result, evaluator="tone")[2]
    assert verdict == f"missing: no baseline: record {first[:12]} has no mean for 'tone'"


def test_both_kinds_of_gate_on_one_evaluator_are_checked(project: Path) -> None:
    assert run(project).returncode == 0
    set_score(project, 0.7)

    result = run(project, "--fail-under", "acc=0.5", "--max-regression", "acc=0.1")

    assert result.returncode == 1, result.transcript
    table = gate_rows(result)
    assert table["qa", "acc", "fail_under"] == [">= 0.5", "0.7", "pass"]
    assert table["qa", "acc", "max_regression"] == ["baseline 0.9 − 0.1", "0.7", "fail"]


# -- a record named by id ------------------------------------------------------------


def test_baseline_id_prefix_pins_the_record(project: Path) -> None:
    assert run(project).returncode == 0
    set_score(project, 0.95)
    assert run(project).returncode == 0
    first = recorded(project)[0]["id"]
    set_score(project, 0.9)

    against_last = run(project, "--max-regression", "acc=0.02")
    against_first = run(project, "--baseline", first[:8], "--max-regression", "acc=0.02")

    assert against_last.returncode == 1, against_last.transcript
    assert against_first.returncode == 0, against_first.transcript
    assert gate(against_first)[0] == "baseline 0.9 − 0.02"


def test_each_experiment_takes_the_given_record_of_its_own_name(project: Path) -> None:
    write_experiment(
        project / "experiments", "other", evaluators={"acc": scorer("acc", score(project))}
    )
    assert run(project, "--name", "qa").returncode == 0
    set_score(project, 0.5)
    assert run(project, "--name", "other").returncode == 0
    qa, other = (r["id"] for r in recorded(project))

    result = run(project, "--baseline", qa, "--baseline", other, "--max-regression", "acc=1")

    assert gate(result, "qa")[0] == "baseline 0.9 − 1"
    assert gate(result, "other")[0] == "baseline 0.5 − 1"


def test_one_given_record_is_every_experiments_baseline(project: Path) -> None:
    write_experiment(
        project / "experiments", "other", evaluators={"acc": scorer("acc", score(project))}
    )
    assert run(project, "--name", "qa").returncode == 0
    (qa,) = (r["id"] for r in recorded(project))

    result = run(project, "--baseline", qa, "--max-regression", "acc=0")

    assert result.returncode == 0, result.transcript
    assert gate(result, "qa")[0] == gate(result, "other")[0] == "baseline 0.9 − 0"


def test_unknown_baseline_id_is_a_usage_error(project: Path) -> None:
    assert run(project).returncode == 0

    result = run(project, "--baseline", "nosuchid", "--max-regression", "acc=0.02")

    assert result.returncode == 2, result.transcript
    assert "baseline 'nosuchid': no experiment with that id in the store" in result.stderr
    assert "Traceback" not in result.output


def test_baseline_without_a_regression_gate_is_a_usage_error(project: Path) -> None:
    result = run(project, "--baseline", "last")

    assert result.returncode == 2, result.transcript
    assert "--max-regression" in result.stderr


@pytest.mark.parametrize("value", ["acc", "acc=", "acc=much", "acc=-0.1", "acc=nan"])
def test_malformed_max_regression_is_a_usage_error(project: Path, value: str) -> None:
    result = run(project, "--max-regression", value)

    assert result.returncode == 2, result.transcript
    assert "--max-regression" in result.stderr
    assert "Traceback" not in result.output


# -- evalwire.toml -------------------------------------------------------------------


def test_experiment_table_sets_the_gate_and_the_baseline(project: Path) -> None:
    assert run(project).returncode == 0
    first = recorded(project)[0]["id"]
    set_score(project, 0.3)
    assert run(project).returncode == 0
    write(
        project / "evalwire.toml",
        f"""
        retries = 0

        [experiments.qa]
        max_regression = {{acc = 0.05}}
        baseline = "{first}"
        """,
    )
    set_score(project, 0.86)

    result = run(project)

    assert result.returncode == 0, result.transcript
    assert gate(result) == ["baseline 0.9 − 0.05", "0.86", "pass"]


def test_top_level_max_regression_defaults_to_the_last_record(project: Path) -> None:
    assert run(project).returncode == 0
    write(project / "evalwire.toml", "retries = 0\nmax_regression = {acc = 0.05}\n")
    set_score(project, 0.8)

    result = run(project)

    assert result.returncode == 1, result.transcript
    assert gate(result) == ["baseline 0.9 − 0.05", "0.8", "fail"]


# -- for other reporters -------------------------------------------------------------

STASH_READER = """
from evalwire import hookimpl

@hookimpl
def evalwire_session_finish(session, results, exitstatus):
    for gate in session.config.stash.get("gates", []):
        print("GATE", gate.kind, gate.threshold, gate.baseline, gate.baseline_id,
              gate.measured, gate.passed)
"""


def test_regression_gate_records_are_in_the_stash_for_other_reporters(project: Path) -> None:
    assert run(project).returncode == 0
    first = recorded(project)[0]["id"]
    write(project / "plugins" / "gate_reader.py", STASH_READER)
    set_score(project, 0.5)

    result = run(
        project,
        "-p",
        "gate_reader",
        "--max-regression",
        "acc=0.1",
        env=environment(pythonpath=[project / "plugins"]),
    )

    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("GATE ")]
    assert lines == [["GATE", "max_regression", "0.1", "0.9", first, "0.5", "False"]]


def test_the_markdown_summary_shows_the_baseline(project: Path) -> None:
    assert run(project).returncode == 0
    set_score(project, 0.5)
    summary = project / "summary.md"

    result = run(project, "--max-regression", "acc=0.1", "--markdown", str(summary))

    assert result.returncode == 1, result.transcript
    text = summary.read_text(encoding="utf-8")
    assert "baseline 0.9 − 0.1" in text
    assert "0.4 below the baseline 0.9" in text
