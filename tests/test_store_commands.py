"""``evalwire history``, ``show``, ``compare`` and ``export`` read the store back.

A small project is run for real (``evalwire run`` in a subprocess) a few
times, with a task whose answers come from a file the test rewrites between
runs, so one run can regress on a known example; then the commands are run
as subprocesses and their output (parsed, for ``--json``) is checked.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from clihelpers import DIE_ONCE_RECORDED, Result, evalwire, write, write_experiment, write_jsonl

STORE = ("-p", "evalwire.builtin.store")

#: Gives the wrong answers in ``answers.json`` beside it, else echoes the input.
#: At the example ``die_at.txt`` beside it names, waits until the runs before
#: it are in the store and then kills its own process, as ``kill -9`` would.
TASK = (
    DIE_ONCE_RECORDED
    + """
import json

def task(input):
    answers = Path(__file__).parent / "answers.json"
    wrong = json.loads(answers.read_text()) if answers.exists() else {}
    die_at = Path(__file__).parent / "die_at.txt"
    if die_at.exists() and input["x"] == int(die_at.read_text()):
        die_once_recorded(input["x"])
    return wrong.get(str(input["x"]), input["x"])
"""
)

ROWS = [{"id": f"ex{i}", "input": {"x": i}, "expected": {"x": i}} for i in range(5)]


def cli(root: Path, *args: str) -> Result:
    return evalwire(*STORE, *args, cwd=root)


def cli_json(root: Path, *args: str) -> Any:
    done = cli(root, *args, "--json")
    assert done.returncode == 0, done.transcript
    return json.loads(done.stdout)


def run(root: Path, name: str = "qa", wrong: dict[str, int] | None = None) -> str:
    """Run experiment ``name`` with these wrong answers; the id it was recorded under."""
    write(root / "experiments" / name / "answers.json", json.dumps(wrong or {}))
    done = cli(root, "run", "-e", "experiments", "--name", name)
    assert done.returncode in (0, 1), done.transcript
    return latest_id(root, name)


def killed(root: Path, at: int, name: str = "qa") -> str:
    """Run experiment ``name`` one example at a time until its process kills itself
    (SIGKILL) at example ``ex{at}``, with the ``at`` runs before it recorded; its id."""
    die_at = root / "experiments" / name / "die_at.txt"
    write(die_at, str(at))
    try:
        done = cli(root, "run", "-e", "experiments", "--name", name, "--task-concurrency", "1")
    finally:
        die_at.unlink()
    assert done.returncode == -signal.SIGKILL, done.transcript
    return latest_id(root, name)


def latest_id(root: Path, name: str) -> str:
    conn = sqlite3.connect(root / ".evalwire" / "evalwire.db")
    try:
        [(experiment_id,)] = conn.execute(
            "SELECT id FROM experiments WHERE name = ? ORDER BY started_at DESC, rowid DESC "
            "LIMIT 1",
            (name,),
        ).fetchall()
    finally:
        conn.close()
    return str(experiment_id)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project with two experiments, ``qa`` and ``other``."""
    write(tmp_path / "evalwire.toml", "retries = 0\n")
    for name in ("qa", "other"):
        write_experiment(tmp_path / "experiments", name, task=TASK, dataset=ROWS)
    return tmp_path


# -- history ---------------------------------------------------------------------


def test_history_of_an_empty_project_says_so_and_exits_0(tmp_path: Path) -> None:
    done = cli(tmp_path, "history")
    assert done.returncode == 0, done.transcript
    assert "No experiments recorded yet" in done.stdout
    assert not (tmp_path / ".evalwire").exists()  # reading never creates a store


def test_history_lists_experiments_newest_first_with_their_scores(root: Path) -> None:
    first = run(root)
    second = run(root, wrong={"1": 99})
    other = run(root, "other")

    entries = cli_json(root, "history")
    assert [e["id"] for e in entries] == [other, second, first]
    by_id = {e["id"]: e for e in entries}
    assert by_id[first]["scores"]["exact_match"]["mean"] == 1.0
    assert by_id[second]["scores"]["exact_match"]["mean"] == pytest.approx(0.8)
    assert by_id[second]["status"] == "passed"
    assert by_id[second]["completed"] == 5
    assert by_id[second]["duration"] >= 0

    text = cli(root, "history")
    assert text.returncode == 0, text.transcript
    lines = text.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "STARTED", "NAME", "STATUS"]
    assert lines[1].startswith(other[:8])
    assert "exact_match=0.800" in lines[2]


def test_history_name_and_limit_narrow_the_list(root: Path) -> None:
    run(root)
    newest = run(root)
    run(root, "other")
    entries = cli_json(root, "history", "--name", "qa", "--limit", "1")
    assert [e["id"] for e in entries] == [newest]


# -- show --------------------------------------------------------------------------


def test_show_gives_one_experiment_with_its_runs_and_evaluations(root: Path) -> None:
    experiment_id = run(root, wrong={"2": 7})
    shown = cli_json(root, "show", experiment_id[:6])
    assert shown["experiment"]["id"] == experiment_id
    runs = shown["runs"]
    assert [r["example_id"] for r in runs] == [f"ex{i}" for i in range(5)]
    assert runs[2]["output"] == 7
    assert runs[2]["input"] == {"x": 2}
    [evaluation] = runs[2]["evaluations"]
    assert (evaluation["name"], evaluation["score"]) == ("exact_match", 0.0)

    text = cli(root, "show", experiment_id)
    assert text.returncode == 0, text.transcript
    assert experiment_id in text.stdout
    assert "exact_match" in text.stdout


def test_show_failures_keeps_only_runs_that_failed_or_scored_below_1(root: Path) -> None:
    experiment_id = run(root, wrong={"2": 7, "4": 0})
    shown = cli_json(root, "show", experiment_id, "--failures")
    assert [r["example_id"] for r in shown["runs"]] == ["ex2", "ex4"]


def test_show_last_needs_a_name_when_the_store_holds_several(root: Path) -> None:
    run(root)
    other = run(root, "other")
    done = cli(root, "show", "last")
    assert done.returncode == 2, done.transcript
    assert "--name" in done.stderr and "other" in done.stderr and "qa" in done.stderr
    assert cli_json(root, "show", "last", "--name", "other")["experiment"]["id"] == other


def test_last_means_the_only_name_when_there_is_one(root: Path) -> None:
    first = run(root)
    second = run(root)
    assert cli_json(root, "show", "last")["experiment"]["id"] == second
    assert cli_json(root, "show", "last~1")["experiment"]["id"] == first
    done = cli(root, "show", "last~2")
    assert done.returncode == 2, done.transcript


def test_an_unknown_id_exits_2_with_a_message(root: Path) -> None:
    run(root)
    done = cli(root, "show", "feedfacefeedface")
    assert done.returncode == 2, done.transcript
    assert "no experiment 'feedfacefeedface'" in done.stderr
    assert "Traceback" not in done.stderr


# -- compare ---------------------------------------------------------------------------


def test_compare_finds_the_example_that_regressed(root: Path) -> None:
    before = run(root)
    after = run(root, wrong={"3": -1})
    result = cli_json(root, "compare", before, after)

    assert (result["a"]["id"], result["b"]["id"]) == (before, after)
    [stats] = result["evaluators"]
    assert stats["evaluator"] == "exact_match"
    assert (stats["mean_a"], stats["mean_b"]) == (1.0, pytest.approx(0.8))
    assert stats["delta"] == pytest.approx(-0.2)
    low, high = stats["ci"]
    assert low <= stats["delta"] <= high
    assert stats["pairs"] == 5
    assert [c["example_id"] for c in result["regressed"]] == ["ex3"]
    assert result["regressed"][0]["delta"] == -1.0
    assert result["improved"] == []
    assert result["unmatched_examples"] == {"only_a": 0, "only_b": 0}

    text = cli(root, "compare", before[:8], after[:8])
    assert text.returncode == 0, text.transcript
    regressed = text.stdout.split("regressed (1):", 1)[1].split("improved", 1)[0]
    assert "ex3" in regressed


def test_compare_lists_regressions_worst_first_and_improvements(root: Path) -> None:
    before = run(root, wrong={"0": 5})
    after = run(root, wrong={"1": 9, "2": 8})
    result = cli_json(root, "compare", "last~1", "last", "--name", "qa")
    assert (result["a"]["id"], result["b"]["id"]) == (before, after)
    assert [c["example_id"] for c in result["regressed"]] == ["ex1", "ex2"]
    assert [c["example_id"] for c in result["improved"]] == ["ex0"]


def test_compare_beside_an_id_last_means_the_last_of_that_name(root: Path) -> None:
    before = run(root)
    after = run(root)
    run(root, "other")
    result = cli_json(root, "compare", before, "last")
    assert result["b"]["id"] == after


def test_compare_matches_examples_by_id_across_dataset_versions(root: Path) -> None:
    before = run(root)
    # A new version of the dataset: ex0 dropped, ex9 added, the rest the same.
    write_jsonl(
        root / "experiments" / "qa" / "dataset.jsonl",
        [*ROWS[1:], {"id": "ex9", "input": {"x": 9}, "expected": {"x": 9}}],
    )
    after = run(root, wrong={"4": 0})
    result = cli_json(root, "compare", before, after)
    assert result["a"]["dataset_version"] != result["b"]["dataset_version"]
    assert result["unmatched_examples"] == {"only_a": 1, "only_b": 1}
    assert result["matched_examples"] == 4
    assert [c["example_id"] for c in result["regressed"]] == ["ex4"]

    text = cli(root, "compare", before, after)
    assert "1 only in A, 1 only in B" in text.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_compare_with_an_interrupted_record_notes_it_holds_only_some_runs(root: Path) -> None:
    before = run(root)
    after = killed(root, at=3)
    entries = cli_json(root, "history")
    assert [(e["id"], e["status"]) for e in entries] == [
        (after, "interrupted"),
        (before, "passed"),
    ]

    result = cli_json(root, "compare", before, after)
    assert (result["a"]["status"], result["b"]["status"]) == ("passed", "interrupted")
    assert result["b"]["completed"] == 3
    assert result["matched_runs"] == 3
    assert result["unmatched_examples"] == {"only_a": 2, "only_b": 0}

    text = cli(root, "compare", before, after)
    assert text.returncode == 0, text.transcript
    assert text.stderr == (
        f"note: B ({after[:8]}) was interrupted: compared on the 3 of 5 run(s) it recorded\n"
    )
    assert "matched 3 run(s) over 3 example(s)" in text.stdout


def test_compare_of_identical_runs_has_zero_delta_and_a_zero_interval(root: Path) -> None:
    before = run(root, wrong={"1": 3})
    after = run(root, wrong={"1": 3})
    [stats] = cli_json(root, "compare", before, after)["evaluators"]
    assert stats["delta"] == 0.0
    assert stats["ci"] == [0.0, 0.0]


# -- export ----------------------------------------------------------------------------


def test_export_csv_has_a_row_per_run_and_columns_per_evaluator(root: Path) -> None:
    experiment_id = run(root, wrong={"1": 4})
    done = cli(root, "export", experiment_id, "--format", "csv")
    assert done.returncode == 0, done.transcript
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 5
    assert {"eval.exact_match.score", "eval.exact_match.label"} <= set(rows[0])
    assert [r["example_id"] for r in rows] == [f"ex{i}" for i in range(5)]
    assert rows[1]["eval.exact_match.score"] == "0.0"
    assert rows[1]["output"] == "4"
    assert json.loads(rows[1]["input"]) == {"x": 1}
    assert rows[0]["experiment_id"] == experiment_id


def test_export_json_and_jsonl_give_the_same_rows(root: Path) -> None:
    experiment_id = run(root)
    as_json = cli(root, "export", experiment_id, "--format", "json")
    as_jsonl = cli(root, "export", experiment_id, "--format", "jsonl")
    assert as_json.returncode == 0 and as_jsonl.returncode == 0
    rows = json.loads(as_json.stdout)
    assert rows == [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    assert len(rows) == 5
    assert rows[0]["evaluations"][0]["name"] == "exact_match"
    assert rows[0]["experiment_id"] == experiment_id


def test_export_output_writes_a_file_in_the_format_its_suffix_names(root: Path) -> None:
    run(root)
    target = root / "out" / "runs.csv"
    target.parent.mkdir()
    done = cli(root, "export", "last", "--name", "qa", "--output", str(target))
    assert done.returncode == 0, done.transcript
    assert done.stdout == ""
    assert "exported 5 run(s)" in done.stderr
    assert len(list(csv.DictReader(target.open(newline="")))) == 5


# -- which store -------------------------------------------------------------------------


def test_commands_read_the_store_given_with_store(root: Path) -> None:
    done = cli(root, "run", "-e", "experiments", "--name", "qa", "--store", "elsewhere.db")
    assert done.returncode == 0, done.transcript
    assert "No experiments recorded yet" in cli(root, "history").stdout
    [entry] = cli_json(root, "history", "--store", "elsewhere.db")
    assert entry["name"] == "qa"


def test_commands_refuse_a_file_that_is_not_a_store(root: Path) -> None:
    bogus = root / "bogus.db"
    bogus.write_bytes(b"not a database at all" * 10)
    done = cli(root, "history", "--store", str(bogus))
    assert done.returncode == 2, done.transcript
    assert str(bogus) in done.stderr
