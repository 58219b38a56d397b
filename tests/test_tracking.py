"""The tracker API: code that evaluates on its own logs results into the store and CSV files."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalwire.builtin.csv import LEADERBOARD_COLUMNS, RESULTS_COLUMNS
from evalwire.errors import UsageError
from evalwire.tracking import ScoreError, SimpleExperimentTracker, extract_score, score_path

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def history_cli(store: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "evalwire", "history", "--store", str(store), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[SimpleExperimentTracker]:
    with SimpleExperimentTracker("qa-bot", tmp_path / "out", score_key="metrics.accuracy") as t:
        yield t


# -- logging -------------------------------------------------------------------


def test_a_logged_result_is_read_back_with_its_score(tracker: SimpleExperimentTracker) -> None:
    tracker.log(
        {"input": {"q": "2+2?"}, "output": "4", "expected": {"a": "4"}, "metrics": {"accuracy": 1}}
    )
    [row] = tracker.get_run_results()
    assert row["input"] == {"q": "2+2?"}
    assert row["output"] == "4"
    assert row["expected"] == {"a": "4"}
    assert row["score"] == 1.0
    assert row["score_error"] is None
    assert row["metadata"] == {"metrics": {"accuracy": 1}}


def test_values_that_are_not_dicts_are_kept_under_value(tracker: SimpleExperimentTracker) -> None:
    tracker.log({"input": "2+2?", "expected": "4", "output": "4", "metrics": {"accuracy": 1}})
    [row] = tracker.get_run_results()
    assert (row["input"], row["expected"]) == ({"value": "2+2?"}, {"value": "4"})


def test_a_missing_score_is_an_evaluation_error_not_a_crash(
    tracker: SimpleExperimentTracker,
) -> None:
    run = tracker.log({"input": {}, "output": "?", "metrics": {"precision": 0.5}})
    [evaluation] = run.evaluations
    assert evaluation.score is None
    assert evaluation.error is not None and "accuracy" in evaluation.error
    [row] = tracker.get_run_results()
    assert row["score"] is None and "metrics.accuracy" in row["score_error"]


def test_a_score_that_is_not_a_number_is_an_evaluation_error(
    tracker: SimpleExperimentTracker,
) -> None:
    run = tracker.log({"metrics": {"accuracy": "high"}})
    assert run.evaluations[0].error == "the score at 'metrics.accuracy' is 'high', not a number"


def test_a_list_score_key_reaches_keys_that_contain_dots(tmp_path: Path) -> None:
    with SimpleExperimentTracker("p", tmp_path, score_key=["gen.v2", "score"]) as tracker:
        run = tracker.log({"gen.v2": {"score": 0.25}})
    assert run.evaluations[0].score == 0.25
    assert run.evaluations[0].name == "gen.v2.score"


def test_extra_keywords_join_the_result_and_metadata_is_kept(
    tracker: SimpleExperimentTracker,
) -> None:
    tracker.log({"output": "x"}, metrics={"accuracy": 0.5}, metadata={"model": "m1"})
    [row] = tracker.get_run_results()
    assert row["score"] == 0.5
    assert row["metadata"] == {"metrics": {"accuracy": 0.5}, "model": "m1"}


def test_a_result_id_becomes_the_example_id(tracker: SimpleExperimentTracker) -> None:
    tracker.log_batch([{"id": "q-7", "metrics": {"accuracy": 1}}, {"metrics": {"accuracy": 0}}])
    assert [r["example_id"] for r in tracker.get_run_results()] == ["q-7", "1"]


def test_a_task_error_in_the_result_is_recorded_as_the_runs_error(
    tracker: SimpleExperimentTracker,
) -> None:
    tracker.log({"error": "timeout", "metrics": {"accuracy": 0}})
    [row] = tracker.get_run_results()
    assert row["error"] == "timeout"
    assert tracker.finish_run().status == "failed"


def test_log_batch_records_every_result_in_order(tracker: SimpleExperimentTracker) -> None:
    runs = tracker.log_batch([{"metrics": {"accuracy": s}} for s in (0.1, 0.2, 0.3)])
    assert [r.index for r in runs] == [0, 1, 2]
    assert [r["score"] for r in tracker.get_run_results()] == [0.1, 0.2, 0.3]


def test_log_refuses_something_that_is_not_a_dict(tracker: SimpleExperimentTracker) -> None:
    with pytest.raises(TypeError, match="takes a dict"):
        tracker.log(["not", "a", "dict"])  # type: ignore[arg-type]


def test_alog_writes_in_a_worker_thread(tracker: SimpleExperimentTracker) -> None:
    readers: set[str] = set()

    class Watched(Mapping[str, Any]):
        # Logging reads the result: note which thread did it.
        def __init__(self, **data: Any) -> None:
            self.data = data

        def __getitem__(self, key: str) -> Any:
            readers.add(threading.current_thread().name)
            return self.data[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self.data)

        def __len__(self) -> int:
            return len(self.data)

    async def main() -> str:
        await asyncio.gather(
            *(tracker.alog(Watched(metrics={"accuracy": i / 10})) for i in range(10))
        )
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert readers and loop_thread not in readers
    assert sorted(r["score"] for r in tracker.get_run_results()) == [i / 10 for i in range(10)]


# -- runs ----------------------------------------------------------------------


def test_each_started_run_is_its_own_record_newest_first(tracker: SimpleExperimentTracker) -> None:
    tracker.log_batch([{"metrics": {"accuracy": 1}}, {"metrics": {}}])
    first = tracker.run_id
    second = tracker.start_run("prompt-v2", metadata={"prompt": "v2"})
    tracker.log_batch([{"metrics": {"accuracy": 0.5}}, {"metrics": {"accuracy": 1}}])
    history = tracker.get_experiment_history()
    assert [h["run_id"] for h in history] == [second, first]
    assert [(h["mean"], h["count"], h["errors"]) for h in history] == [(0.75, 2, 0), (1.0, 1, 1)]
    assert history[0]["experiment_name"] == "prompt-v2"
    assert history[0]["metadata"] == {"prompt": "v2"}


def test_log_goes_to_the_run_id_given(tracker: SimpleExperimentTracker) -> None:
    first = tracker.start_run("a")
    tracker.start_run("b")
    tracker.log({"metrics": {"accuracy": 1}}, run_id=first)
    assert len(tracker.get_run_results(first)) == 1
    assert tracker.get_run_results() == []


def test_an_unused_default_run_leaves_no_record(tracker: SimpleExperimentTracker) -> None:
    tracker.start_run("explicit")
    assert [h["experiment_name"] for h in tracker.get_experiment_history()] == ["explicit"]


def test_finishing_a_run_records_its_status_and_totals(tracker: SimpleExperimentTracker) -> None:
    tracker.log({"metrics": {"accuracy": 1}})
    run_id = tracker.run_id
    result = tracker.finish_run()
    assert (result.status, result.completed, result.mean("metrics.accuracy")) == ("passed", 1, 1.0)
    [record] = tracker.get_experiment_history()
    assert (record["run_id"], record["status"], record["total"]) == (run_id, "passed", 1)
    assert tracker.run_id != run_id  # the next log starts a new run


def test_an_unknown_run_is_refused_with_a_clear_message(tracker: SimpleExperimentTracker) -> None:
    with pytest.raises(UsageError, match="no run 'nope' of project 'qa-bot'"):
        tracker.log({"metrics": {"accuracy": 1}}, run_id="nope")
    with pytest.raises(UsageError, match="no run 'nope'"):
        tracker.get_run_results("nope")


def test_a_closed_tracker_refuses_to_log_but_still_reads(tmp_path: Path) -> None:
    tracker = SimpleExperimentTracker("p", tmp_path)
    tracker.log({"score": 1})
    tracker.close()
    with pytest.raises(UsageError, match="closed"):
        tracker.log({"score": 1})
    assert tracker.get_experiment_history()[0]["status"] == "passed"


def test_a_foreign_file_at_the_store_path_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "evalwire.db").write_text("not a database")
    with pytest.raises(UsageError, match="is not an evalwire store"):
        SimpleExperimentTracker("p", tmp_path)
    assert (tmp_path / "evalwire.db").read_text() == "not a database"


def test_a_bad_score_key_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a score path"):
        SimpleExperimentTracker("p", tmp_path, score_key="metrics..accuracy")


# -- the same store and files as `evalwire run` -----------------------------------------------


def test_the_default_output_dir_is_dot_evalwire_in_the_current_folder(tmp_path: Path) -> None:
    with SimpleExperimentTracker("p") as tracker:
        tracker.log({"score": 1})
    assert (tmp_path / ".evalwire" / "evalwire.db").is_file()
    assert (tmp_path / ".evalwire" / ".gitignore").read_text() == "*\n"


def test_evalwire_history_lists_the_trackers_runs(tmp_path: Path) -> None:
    with SimpleExperimentTracker("qa-bot", tmp_path, score_key="metrics.accuracy") as tracker:
        tracker.log_batch([{"metrics": {"accuracy": 1}}, {"metrics": {"accuracy": 0}}])
        first = tracker.run_id
        second = tracker.start_run("v2")
        tracker.log({"metrics": {}})
    with SimpleExperimentTracker("other", tmp_path) as other:
        other.log({"score": 1})
    listed = history_cli(tmp_path / "evalwire.db", "--name", "qa-bot")
    assert [e["id"] for e in listed] == [second, first]
    assert listed[1]["scores"] == {"metrics.accuracy": {"mean": 0.5, "count": 2, "errors": 0}}
    assert (listed[0]["status"], listed[0]["evaluation_errors"]) == ("failed", 1)
    assert len(history_cli(tmp_path / "evalwire.db")) == 3


def test_evalwire_history_sees_results_of_a_run_still_open(
    tracker: SimpleExperimentTracker,
) -> None:
    tracker.log({"metrics": {"accuracy": 0.5}})
    tracker.get_run_results()  # waits until the store has it
    [record] = history_cli(tracker.store_path)
    assert (record["status"], record["completed"]) == ("running", 1)


def test_results_are_appended_to_the_csv_reporters_files(tracker: SimpleExperimentTracker) -> None:
    tracker.log({"id": "a", "output": {"x": 1}, "metrics": {"accuracy": 0.5}})
    tracker.log({"id": "b", "output": "y", "metrics": {}})
    results = read_csv(tracker.output_dir / "experiment_results.csv")
    assert tuple(results[0]) == RESULTS_COLUMNS
    assert [r[2:9] for r in results[1:]] == [
        ["a", "1", '{"x": 1}', "", "metrics.accuracy", "0.5", ""],
        ["b", "1", '"y"', "", "metrics.accuracy", "", ""],
    ]
    assert "metrics.accuracy" in results[2][10]
    assert not (tracker.output_dir / "leaderboard.csv").exists()  # written when a run finishes
    tracker.finish_run()
    board = read_csv(tracker.output_dir / "leaderboard.csv")
    assert tuple(board[0]) == LEADERBOARD_COLUMNS
    assert board[1][2:] == [
        "qa-bot",
        board[1][3],
        "qa-bot",
        "",
        "failed",
        "2",
        "0",
        "metrics.accuracy",
        "0.5",
        "1",
        "1",
    ]


def test_a_foreign_csv_file_is_left_alone_and_logging_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "experiment_results.csv").write_text("a,b\n1,2\n")
    with SimpleExperimentTracker("p", tmp_path) as tracker:
        tracker.log({"score": 1})
        tracker.log({"score": 0})
        assert len(tracker.get_run_results()) == 2
    assert (tmp_path / "experiment_results.csv").read_text() == "a,b\n1,2\n"
    err = capsys.readouterr().err
    assert err.count("cannot write CSV results") == 1 and "other columns" in err


def test_csv_false_writes_only_the_store(tmp_path: Path) -> None:
    with SimpleExperimentTracker("p", tmp_path, csv=False) as tracker:
        tracker.log({"score": 1})
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == []


# -- score paths (properties) ------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
dotless_keys = st.text(st.characters(blacklist_characters="."), min_size=1)
any_keys = st.text()
scores = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def nested(
    draw: st.DrawFn, keys: st.SearchStrategy[str]
) -> tuple[dict[str, Any], list[str], float]:
    """A nested dict with a score at a random path, other keys beside it at every level."""
    path = draw(st.lists(keys, min_size=1, max_size=5))
    score = draw(scores)
    value: Any = score
    for key in reversed(path):
        siblings: dict[str, Any] = draw(st.dictionaries(keys, json_values, max_size=3))
        value = {**siblings, key: value}  # the path's key wins over a sibling of that name
    return value, path, score


@PROPERTY
@given(nested(dotless_keys))
def test_a_dotted_path_finds_the_score_wherever_it_is(
    case: tuple[dict[str, Any], list[str], float],
) -> None:
    data, path, score = case
    assert extract_score(data, score_path(".".join(path))) == score


@PROPERTY
@given(nested(any_keys))
def test_a_list_path_finds_the_score_whatever_the_keys(
    case: tuple[dict[str, Any], list[str], float],
) -> None:
    data, path, score = case
    assert extract_score(data, score_path(path)) == score


def _without_leaf(data: dict[str, Any], path: list[str]) -> dict[str, Any]:
    inner = data
    for key in path[:-1]:
        inner = inner[key]
    del inner[path[-1]]
    return data


@PROPERTY
@given(nested(any_keys))
def test_a_missing_key_is_a_score_error(case: tuple[dict[str, Any], list[str], float]) -> None:
    data, path, _ = case
    with pytest.raises(ScoreError, match="no score at"):
        extract_score(_without_leaf(data, path), score_path(path))


@PROPERTY
@given(json_values, st.lists(any_keys | st.integers(-3, 3), min_size=1, max_size=4))
def test_any_value_and_path_give_a_number_or_a_score_error(data: Any, path: list[Any]) -> None:
    try:
        found = extract_score(data, path)
    except ScoreError:
        return
    assert isinstance(found, float)


def test_log_never_raises_for_a_missing_score(tmp_path: Path) -> None:
    with SimpleExperimentTracker("p", tmp_path, score_key=["a", "b"], csv=False) as tracker:

        @PROPERTY
        @given(nested(any_keys))
        def check(case: tuple[dict[str, Any], list[str], float]) -> None:
            data, path, _ = case
            run = tracker.log(_without_leaf(data, path))
            [evaluation] = run.evaluations
            if evaluation.error is None:  # the data happened to have a number at a.b
                assert isinstance(evaluation.score, float)
            else:
                assert evaluation.score is None

        check()
        errors = sum(r["score_error"] is not None for r in tracker.get_run_results())
    assert errors > 0


def test_numbers_are_found_in_lists_by_index() -> None:
    data: Mapping[str, Any] = {"runs": [{"score": 0.1}, {"score": 0.9}]}
    assert extract_score(data, score_path("runs.1.score")) == 0.9
    assert extract_score(data, score_path(["runs", -1, "score"])) == 0.9
    with pytest.raises(ScoreError, match="has 2 items"):
        extract_score(data, score_path("runs.2.score"))


def test_booleans_count_as_one_and_zero() -> None:
    assert extract_score({"score": True}, ("score",)) == 1.0
    assert extract_score({"score": False}, ("score",)) == 0.0
