"""The CI reporters, end to end: ``--junit PATH``, ``--markdown PATH`` and ``--csv DIR``.

Each test writes experiments into ``tmp_path``, runs ``python -m evalwire run``
there with the reporters loaded by ``-p`` and reads back the files they wrote
the way a CI system would: JUnit XML with ElementTree, CSV with the csv module.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from clihelpers import Result, evalwire, rows, write, write_experiment

PLUGINS = (
    "-p", "evalwire.builtin.gates",
    "-p", "evalwire.builtin.junit",
    "-p", "evalwire.builtin.markdown",
    "-p", "evalwire.builtin.csv",
)  # fmt: skip

#: Scores 1 for every row whose x is not a multiple of 3: a mean of 2/3 on rows 0..2.
NOT_THIRD = """
def not_third(output):
    return output % 3 != 0
"""

ALWAYS = """
def always(output):
    return 1.0
"""

#: Fails on every odd x, each time with its own message.
ODD_FAILS = """
def task(input):
    x = input["x"]
    if x % 2:
        raise ValueError(f"odd input {x}")
    return x
"""

#: A label and an explanation besides the score.
LABELLED = """
def labelled(output):
    return (1.0, "good", f"saw {output}")
"""


@pytest.fixture
def experiments(tmp_path: Path) -> Path:
    """An experiments folder in the project folder ``tmp_path`` (not created)."""
    return tmp_path / "experiments"


def run(tmp_path: Path, *args: str | Path, **kwargs: Any) -> Result:
    """``evalwire run -e experiments ARGS`` in ``tmp_path`` with the CI plugins."""
    return evalwire(
        "run", "-e", "experiments", *PLUGINS, "--retries", "0", *args, cwd=tmp_path, **kwargs
    )


# -- JUnit -------------------------------------------------------------------------


def junit(tmp_path: Path, *args: str | Path) -> tuple[Result, ET.Element]:
    path = tmp_path / "reports" / "junit.xml"
    result = run(tmp_path, "--junit", path, *args)
    assert path.is_file(), f"--junit wrote no file\n{result.transcript}"
    return result, ET.parse(path).getroot()


def case_of(root: ET.Element, classname: str, name: str) -> ET.Element:
    found = [
        case
        for case in root.iter("testcase")
        if case.get("classname") == classname and case.get("name") == name
    ]
    assert len(found) == 1, f"{len(found)} testcases {classname}.{name}"
    return found[0]


def properties(element: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in element.iterfind("properties/property")}


def test_junit_has_a_suite_per_experiment_and_a_case_per_evaluator(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD, "always": ALWAYS})
    write_experiment(experiments, "chat", evaluators={"always": ALWAYS})

    result, root = junit(tmp_path)

    assert result.returncode == 0, result.transcript
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.iter("testsuite")] == ["chat", "qa"]
    cases = {(c.get("classname"), c.get("name")) for c in root.iter("testcase")}
    assert cases == {
        ("chat", "task"),
        ("chat", "always"),
        ("qa", "task"),
        ("qa", "not_third"),
        ("qa", "always"),
    }
    assert root.get("tests") == "5" and root.get("failures") == "0" and root.get("errors") == "0"


def test_junit_case_shows_mean_count_and_errors(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})

    _, root = junit(tmp_path)

    case = case_of(root, "qa", "not_third")
    props = properties(case)
    assert float(props["mean"]) == pytest.approx(2 / 3)
    assert (props["count"], props["errors"]) == ("3", "0")
    assert "verdict" not in props and not any(key.startswith("gate.") for key in props)
    assert case.findtext("system-out") == "mean=0.6667 count=3 errors=0"
    assert case.find("failure") is None


def test_junit_missed_gate_is_a_failure_with_its_threshold(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD, "always": ALWAYS})

    result, root = junit(tmp_path, "--fail-under", "not_third=0.8", "--fail-under", "always=1")

    assert result.returncode == 1, result.transcript
    missed = case_of(root, "qa", "not_third")
    assert properties(missed)["gate.fail_under.threshold"] == "0.8"
    assert properties(missed)["verdict"] == "fail"
    failure = missed.find("failure")
    assert failure is not None
    assert failure.get("message") == "gate missed: mean 0.6667, needs >= 0.8"
    assert "threshold=>= 0.8" in (missed.findtext("system-out") or "")
    met = case_of(root, "qa", "always")
    assert properties(met)["verdict"] == "pass"
    assert met.find("failure") is None
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def test_junit_missed_fail_under_fails_even_when_the_regression_gate_passes(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})
    store = ("-p", "evalwire.builtin.store")
    assert run(tmp_path, *store).returncode == 0  # records the baseline: the same mean
    conn = sqlite3.connect(tmp_path / ".evalwire" / "evalwire.db")
    try:
        [(baseline_id,)] = conn.execute("SELECT id FROM experiments").fetchall()
    finally:
        conn.close()

    result, root = junit(
        tmp_path, *store, "--fail-under", "not_third=0.8", "--max-regression", "not_third=0.02"
    )

    assert result.returncode == 1, result.transcript
    case = case_of(root, "qa", "not_third")
    props = properties(case)
    assert props["verdict"] == "fail"
    assert props["gate.fail_under.threshold"] == "0.8"
    assert props["gate.fail_under.verdict"] == "fail"
    assert props["gate.max_regression.threshold"] == "0.02"
    assert float(props["gate.max_regression.baseline"]) == pytest.approx(2 / 3)
    assert props["gate.max_regression.baseline_id"] == baseline_id
    assert props["gate.max_regression.verdict"] == "pass"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "gate missed: mean 0.6667, needs >= 0.8"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def test_junit_experiment_that_could_not_run_is_an_error(tmp_path: Path, experiments: Path) -> None:
    folder = write_experiment(experiments, "qa")
    (folder / "dataset.jsonl").unlink()

    result, root = junit(tmp_path)

    assert result.returncode == 1, result.transcript
    (suite,) = root.iter("testsuite")
    assert [c.get("name") for c in suite.iter("testcase")] == ["experiment"]
    error = case_of(root, "qa", "experiment").find("error")
    assert error is not None
    assert "dataset 'qa' not found" in (error.get("message") or "")
    assert suite.get("errors") == "1" and root.get("errors") == "1"


def test_junit_task_errors_are_a_failure_listing_distinct_errors(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", task=ODD_FAILS, dataset=rows(30))

    result, root = junit(tmp_path)

    assert result.returncode == 1, result.transcript
    failure = case_of(root, "qa", "task").find("failure")
    assert failure is not None
    assert failure.get("message") == "15 of 30 runs failed"
    lines = (failure.text or "").splitlines()
    assert len(lines) == 11, lines  # ten distinct errors, then how many were left out
    assert all("ValueError: odd input" in line and "(example ex" in line for line in lines[:10])
    assert lines[10] == "(10 distinct errors shown of 15)"


def test_junit_evaluation_errors_fail_the_evaluator_case(tmp_path: Path, experiments: Path) -> None:
    flaky = """
    def flaky(output):
        if output == 1:
            raise RuntimeError("cannot score 1")
        return 1.0
    """
    write_experiment(experiments, "qa", evaluators={"flaky": flaky})

    result, root = junit(tmp_path)

    assert result.returncode == 1, result.transcript
    failure = case_of(root, "qa", "flaky").find("failure")
    assert failure is not None
    assert failure.get("message") == "1 of 3 evaluations failed"
    assert "RuntimeError: cannot score 1 (example ex1)" in (failure.text or "")
    assert case_of(root, "qa", "task").find("failure") is None


def test_junit_gate_on_an_evaluator_nobody_has_goes_in_a_gates_suite(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa")

    result, root = junit(tmp_path, "--fail-under", "tone=0.5")

    assert result.returncode == 1, result.transcript
    failure = case_of(root, "gates", "tone").find("failure")
    assert failure is not None
    assert failure.get("message") == "no experiment has an evaluator named 'tone'"


def test_junit_holds_error_messages_xml_cannot_carry(tmp_path: Path, experiments: Path) -> None:
    task = """
    def task(input):
        raise ValueError("colour \\x1b[31mred\\x00 <&>")
    """
    write_experiment(experiments, "qa", task=task)

    result, root = junit(tmp_path)  # parses

    assert result.returncode == 1, result.transcript
    failure = case_of(root, "qa", "task").find("failure")
    assert failure is not None and "<&>" in (failure.text or "")


def test_junit_says_dry_run(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", dataset=rows(10))

    result, root = junit(tmp_path, "--dry-run", "2")

    assert result.returncode == 0, result.transcript
    assert root.get("name") == "evalwire (dry run)"
    assert properties(case_of(root, "qa", "exact_match"))["count"] == "2"


def test_junit_that_cannot_be_written_exits_1_with_one_line(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa")
    (tmp_path / "taken").mkdir()  # a folder where the file should go

    result = run(tmp_path, "--junit", tmp_path / "taken")

    assert result.returncode == 1, result.transcript
    assert "evalwire: cannot write JUnit XML to" in result.stderr
    assert "Traceback" not in result.output
    assert "passed" in result.stdout  # the run itself was reported


# -- Markdown ------------------------------------------------------------------------


def markdown(tmp_path: Path, *args: str | Path) -> tuple[Result, str]:
    path = tmp_path / "summary" / "step.md"
    result = run(tmp_path, "--markdown", path, *args)
    assert path.is_file(), f"--markdown wrote no file\n{result.transcript}"
    return result, path.read_text(encoding="utf-8")


def table_rows(text: str, header_start: str) -> list[list[str]]:
    """The rows of the Markdown table whose header starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return [table[0], *table[2:]]  # without the alignment row


def test_markdown_has_a_table_of_experiments_and_evaluators(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD, "always": ALWAYS})
    write_experiment(experiments, "chat", evaluators={"always": ALWAYS})

    result, text = markdown(tmp_path)

    assert result.returncode == 0, result.transcript
    assert text.startswith("## evalwire results\n")
    header, *body = table_rows(text, "| experiment | status")
    assert header[:4] == ["experiment", "status", "runs", "task errors"]
    assert sorted(header[4:6]) == ["always", "not_third"] and header[6] == "duration"
    by_name = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    qa, chat = by_name["qa"], by_name["chat"]
    assert (qa["status"], qa["runs"], qa["task errors"]) == ("✓ passed", "3/3", "0")
    assert (qa["not_third"], qa["always"]) == ("0.67", "1.00")
    assert (chat["not_third"], chat["always"]) == ("—", "1.00")
    assert qa["duration"].endswith("s")
    assert "### Failures" not in text


def test_markdown_shows_the_gates_table(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD})

    result, text = markdown(tmp_path, "--fail-under", "not_third=0.8")

    assert result.returncode == 1, result.transcript
    assert "### Gates: 0 of 1 passed" in text
    header, *body = table_rows(text, "| experiment | evaluator")
    assert header == ["experiment", "evaluator", "threshold", "measured", "verdict"]
    assert body == [["qa", "not_third", ">= 0.8", "0.6667", "✗ fail"]]
    assert "- **qa**: 1 gate missed" in text
    assert "  - gate `not_third`: mean 0.6667, needs >= 0.8" in text


def test_markdown_lists_failures_with_their_errors(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", task=ODD_FAILS)
    folder = write_experiment(experiments, "lost")
    (folder / "dataset.jsonl").unlink()

    result, text = markdown(tmp_path)

    assert result.returncode == 1, result.transcript
    failures = text.split("### Failures\n", 1)[1]
    assert "- **qa**: 1 task error\n  - `task: ValueError: odd input 1` (example `ex1`)" in failures
    assert "- **lost**: could not run\n  ```\n  dataset 'lost' not found" in failures
    by_name = {row[0]: row for row in table_rows(text, "| experiment | status")[1:]}
    assert by_name["qa"][1] == "✗ failed"
    assert by_name["lost"][1] == "✗ error"


def test_markdown_table_survives_pipes_in_names_and_errors(
    tmp_path: Path, experiments: Path
) -> None:
    task = """
    def task(input):
        raise ValueError("a | b")
    """
    write_experiment(
        experiments, "qa", task=task, evaluators={"a_b": ALWAYS.replace("always", "a_b")}
    )

    result, text = markdown(tmp_path)

    assert result.returncode == 1, result.transcript
    header, *body = table_rows(text, "| experiment | status")
    assert len(body[0]) == len(header)
    assert "`task: ValueError: a | b`" in text  # inside code, as written


def test_markdown_says_dry_run(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", dataset=rows(10))

    result, text = markdown(tmp_path, "--dry-run")

    assert result.returncode == 0, result.transcript
    assert text.startswith("## evalwire results (dry run)\n")


# -- CSV ---------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_module_imports_the_standard_library_csv() -> None:
    from evalwire.builtin import csv as csv_reporter

    assert csv_reporter.csv is csv
    assert csv_reporter.json is json


def test_csv_results_have_a_row_per_run_and_evaluation(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD, "labelled": LABELLED})

    result = run(tmp_path, "--csv", "out")

    assert result.returncode == 0, result.transcript
    table = read_csv(tmp_path / "out" / "experiment_results.csv")
    assert list(table[0]) == [
        "experiment_id", "experiment", "example_id", "repetition", "output", "error",
        "evaluator", "score", "label", "explanation", "eval_error",
    ]  # fmt: skip
    assert len(table) == 6
    assert {row["experiment"] for row in table} == {"qa"}
    assert len({row["experiment_id"] for row in table}) == 1
    by_key = {(row["example_id"], row["evaluator"]): row for row in table}
    assert set(by_key) == {(f"ex{i}", e) for i in range(3) for e in ("not_third", "labelled")}
    row = by_key["ex2", "labelled"]
    assert (row["repetition"], json.loads(row["output"]), row["error"]) == ("1", 2, "")
    assert (float(row["score"]), row["label"], row["explanation"]) == (1.0, "good", "saw 2")
    assert float(by_key["ex0", "not_third"]["score"]) == 0.0


def test_csv_failed_run_is_a_row_with_its_error_and_no_evaluation(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", task=ODD_FAILS)

    run(tmp_path, "--csv", "out")

    table = read_csv(tmp_path / "out" / "experiment_results.csv")
    failed = [row for row in table if row["example_id"] == "ex1"]
    assert len(failed) == 1
    assert failed[0]["error"] == "ValueError: odd input 1"
    assert (failed[0]["evaluator"], failed[0]["score"], failed[0]["output"]) == ("", "", "null")


def test_csv_output_is_json_text(tmp_path: Path, experiments: Path) -> None:
    task = """
    def task(input):
        return {"answer": "x,y\\n\\"quoted\\"", "n": input["x"]}
    """
    write_experiment(experiments, "qa", task=task, evaluators={"always": ALWAYS})

    run(tmp_path, "--csv", "out")

    table = read_csv(tmp_path / "out" / "experiment_results.csv")
    outputs = sorted((json.loads(row["output"]) for row in table), key=lambda o: o["n"])
    assert outputs[0] == {"answer": 'x,y\n"quoted"', "n": 0}


def test_csv_writes_every_row_of_a_large_experiment(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "big", evaluators={"always": ALWAYS}, dataset=rows(5000))

    result = run(tmp_path, "--csv", "out", "--task-concurrency", "50")

    assert result.returncode == 0, result.transcript
    table = read_csv(tmp_path / "out" / "experiment_results.csv")
    assert sorted(row["example_id"] for row in table) == sorted(f"ex{i}" for i in range(5000))


def test_csv_leaderboard_has_a_row_per_experiment_and_evaluator(
    tmp_path: Path, experiments: Path
) -> None:
    write_experiment(experiments, "qa", evaluators={"not_third": NOT_THIRD, "always": ALWAYS})
    write_experiment(experiments, "chat", task=ODD_FAILS, evaluators={"always": ALWAYS})

    result = run(tmp_path, "--csv", "out")

    assert result.returncode == 1, result.transcript
    board = read_csv(tmp_path / "out" / "leaderboard.csv")
    assert list(board[0]) == [
        "timestamp", "experiment_id", "experiment", "experiment_name", "dataset",
        "dataset_version", "status", "runs", "task_errors", "evaluator", "mean", "count",
        "errors",
    ]  # fmt: skip
    by_key = {(row["experiment"], row["evaluator"]): row for row in board}
    assert set(by_key) == {("qa", "not_third"), ("qa", "always"), ("chat", "always")}
    qa = by_key["qa", "not_third"]
    assert float(qa["mean"]) == pytest.approx(2 / 3)
    assert (qa["count"], qa["errors"], qa["status"], qa["runs"]) == ("3", "0", "passed", "3")
    assert qa["dataset"] == "qa" and qa["timestamp"].endswith("Z")
    chat = by_key["chat", "always"]
    assert (chat["status"], chat["task_errors"], chat["count"]) == ("failed", "1", "2")


def test_csv_leaderboard_appends_across_runs(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", evaluators={"always": ALWAYS})

    first = run(tmp_path, "--csv", "out")
    second = run(tmp_path, "--csv", "out")

    assert first.returncode == 0 and second.returncode == 0, second.transcript
    board = read_csv(tmp_path / "out" / "leaderboard.csv")
    assert [row["experiment"] for row in board] == ["qa", "qa"]
    assert len({row["experiment_id"] for row in board}) == 2
    text = (tmp_path / "out" / "leaderboard.csv").read_text(encoding="utf-8")
    assert text.count("timestamp,") == 1  # one header
    results = read_csv(tmp_path / "out" / "experiment_results.csv")
    assert len(results) == 6 and len({row["experiment_id"] for row in results}) == 2


def test_csv_experiment_that_could_not_run_is_on_the_leaderboard(
    tmp_path: Path, experiments: Path
) -> None:
    folder = write_experiment(experiments, "qa")
    (folder / "dataset.jsonl").unlink()

    result = run(tmp_path, "--csv", "out")

    assert result.returncode == 1, result.transcript
    (row,) = read_csv(tmp_path / "out" / "leaderboard.csv")
    assert (row["experiment"], row["status"], row["runs"]) == ("qa", "error", "0")
    assert not (tmp_path / "out" / "experiment_results.csv").exists()


def test_csv_dry_run_appends_nothing(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa", dataset=rows(10))

    result = run(tmp_path, "--csv", "out", "--dry-run")

    assert result.returncode == 0, result.transcript
    assert not (tmp_path / "out").exists()


def test_csv_file_with_other_columns_is_left_alone(tmp_path: Path, experiments: Path) -> None:
    write_experiment(experiments, "qa")
    foreign = write(tmp_path / "out" / "leaderboard.csv", "name,score\nold,1\n")

    result = run(tmp_path, "--csv", "out")

    assert result.returncode == 1, result.transcript
    assert foreign.read_text(encoding="utf-8") == "name,score\nold,1\n"
    assert "leaderboard.csv" in result.stderr and "other columns" in result.stderr
    assert "Traceback" not in result.output
    assert len(read_csv(tmp_path / "out" / "experiment_results.csv")) == 3


# -- all together --------------------------------------------------------------------


def test_options_are_listed_in_run_help(tmp_path: Path) -> None:
    result = evalwire("run", *PLUGINS, "--help", cwd=tmp_path)

    assert result.returncode == 0, result.transcript
    for option in ("--fail-under", "--junit", "--markdown", "--csv"):
        assert option in result.stdout, option


def test_reporters_loaded_twice_write_once(tmp_path: Path, experiments: Path) -> None:
    # As when a plugin comes both from its entry point and from -p.
    write_experiment(experiments, "qa")

    result = run(tmp_path, *PLUGINS, "--csv", "out")

    assert result.returncode == 0, result.transcript
    assert len(read_csv(tmp_path / "out" / "experiment_results.csv")) == 3
    assert len(read_csv(tmp_path / "out" / "leaderboard.csv")) == 1
