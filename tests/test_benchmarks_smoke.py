"""The benchmark harness still runs: every scenario at tiny sizes, correctness only.

No timing is asserted (CI machines are too noisy for that); what is asserted
is that every example ran and was scored, and that each result carries the
keys the table and the JSON file are built from. ``python -m benchmarks``
gives the figures.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root's benchmarks/

from benchmarks import (  # noqa: E402
    SCENARIOS,
    common,
    memory,
    overhead,
    phoenix_recording,
    schedule,
    startup,
)
from benchmarks import __main__ as benchmarks_main  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402

RESULT_KEYS = {"name", "title", "params", "rows", "checks", "notes"}
ROW_KEYS = {
    "measure",
    "value",
    "unit",
    "target",
    "ok",
    "peer",
    "ratio",
    "extrapolated",
    "runs",
    "note",
}


def assert_shape(result: dict[str, Any], name: str) -> None:
    assert RESULT_KEYS <= set(result)
    assert result["name"] == name
    assert result["rows"], "a scenario reports at least one row"
    for r in result["rows"]:
        assert set(r) == ROW_KEYS
    json.dumps(result, default=repr)  # it can be written to the results file
    assert common.table([result])


def measured(result: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [r for r in result["rows"] if r["measure"].startswith(prefix)]


def test_schedule_runs_every_example_with_an_async_and_a_sync_task() -> None:
    result = schedule.run(examples=20, concurrency=10, sleep=0.01, runs=1, peers=False)
    assert_shape(result, "schedule")
    for kind in ("async", "sync"):
        check = result["checks"][kind]
        assert check == {"completed": 20, "task_errors": 0, "mean_correct": 1.0, "status": "passed"}
        (wall,) = measured(result, f"{kind} task: evalwire wall,")
        assert wall["value"] > 0 and wall["target"]
    if result["params"]["store"] != "unavailable":
        assert result["checks"]["async_store_rows"] == 20


# With the arize-phoenix server installed, ``import phoenix.client`` imports the
# server too, and the recording scenario starts a server: these two take tens of
# seconds, but the suite runs them, so the Phoenix scenarios cannot rot.
def test_schedule_peers_run_every_example_in_both_phoenix_runners() -> None:
    result = schedule.run(examples=20, concurrency=10, sleep=0.01, runs=1, sync_slice=5)
    phoenix = result["checks"]["phoenix"]
    assert phoenix["async"] == {"task_runs": 20, "errors": 0, "correct": 20}
    assert phoenix["sync"] == {"task_runs": 5, "errors": 0, "correct": 5}
    (sync_peer,) = measured(result, "phoenix sync run_experiment, 5-ex slice")
    assert "for 20 ex" in sync_peer["extrapolated"]
    (async_row,) = measured(result, "async task: evalwire wall,")
    assert async_row["ratio"] is not None and async_row["peer"]


def test_overhead_runs_every_example_and_breaks_the_time_down() -> None:
    result = overhead.run(examples=200, runs=1)
    assert_shape(result, "overhead")
    checks = result["checks"]
    for variant in ("noop_async", "noop_sync"):
        assert checks[variant]["completed"] == checks[variant]["total"] == 200
        assert checks[variant]["task_errors"] == 0
        assert checks[variant]["mean_correct"] == 1.0
    breakdown = checks["breakdown"]
    assert breakdown["dataset_examples"] == breakdown["units"] == 200
    assert breakdown["executor_runs"] == 200
    assert breakdown["scores"] == 200.0
    if result["params"]["store"] != "unavailable":
        assert checks["noop_async_no_store"]["completed"] == 200
        assert breakdown["stored_runs"] == 200
    assert checks["profile"]["completed"] == 200
    assert measured(result, "breakdown: dataset read")
    buckets = {b["bucket"] for b in result["profile"]["buckets"]}
    assert "dataset read" in buckets and "hook calls (run_complete, all plugins)" in buckets
    assert math.isclose(sum(b["share"] for b in result["profile"]["buckets"]), 100.0)


def test_memory_measures_a_successful_evalwire_run_per_size() -> None:
    result = memory.run(sizes=(100, 300), runs=1)
    assert_shape(result, "memory")
    assert result["checks"] == {
        100: {"exit_status": 0, "stderr": ""},
        300: {"exit_status": 0, "stderr": ""},
    }
    peaks = measured(result, "peak RSS, ")
    assert len(peaks) == 2 and all(r["value"] > 0 for r in peaks)
    assert measured(result, "peak RSS growth")


def test_startup_times_both_commands_and_each_stage() -> None:
    result = startup.run(runs=1, warmup=False, importtime=False)
    assert_shape(result, "startup")
    for command in ("--help", "plugins"):
        assert result["checks"][command]["exit_status"] == 0
        assert result["checks"][command]["stdout_lines"] > 0
    assert len(result["stages"]) == len(startup.STAGES), result["notes"]


def test_importtime_output_is_summarized_by_top_level_and_by_self_time() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   _io\n"
        "import time:      2000 |       2100 | click\n"
        "import time:       300 |        300 |     click.core\n"
        "import time:       500 |       5000 | evalwire.cli\n"
    )
    summary = startup.parse_importtime(stderr)
    assert [t["module"] for t in summary["top_level"]] == ["evalwire.cli", "click"]
    assert summary["top_self"][0] == {
        "module": "click",
        "self_ms": 2.0,
        "cumulative_ms": 2.1,
        "depth": 0,
    }
    assert summary["modules"] == 4


def test_phoenix_recording_without_a_server_says_it_measured_nothing() -> None:
    result = phoenix_recording.run(examples=10, runs=1, server=False)
    assert_shape(result, "phoenix_recording")
    assert result["rows"][0]["value"] is None
    assert result["notes"][0].startswith(
        "not measured: needs the phoenix recorder"
        if not result["checks"]["phoenix_listed"]
        else "not measured: no Phoenix server"
    )


def test_phoenix_recording_records_every_run_and_evaluation() -> None:
    result = phoenix_recording.run(examples=20, runs=1)
    assert_shape(result, "phoenix_recording")
    if result["checks"]["phoenix_listed"]:
        assert result["checks"]["experiments"] == 2  # with task spans, and --no-traces
        assert result["checks"]["runs_per_experiment"] == [20]
        assert result["checks"]["evaluations_per_experiment"] == [20]
        assert result["checks"]["runs_with_a_trace_per_experiment"] == [0, 20]


def test_the_entry_point_writes_the_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(benchmarks_main.QUICK, "memory", {"sizes": (50, 100)})
    out = tmp_path / "results.json"
    assert main(["--quick", "--only", "memory", "--output", str(out)]) == 0
    document = json.loads(out.read_text())
    assert set(document["scenarios"]) == {"memory"}
    assert document["quick"] is True and document["environment"]["python"]
    assert "peak RSS, 100 examples" in capsys.readouterr().out
    # Another run merges into the same day's file instead of dropping other scenarios.
    document["scenarios"]["other"] = {"name": "other"}
    out.write_text(json.dumps(document))
    common.write_results(out, {**document, "scenarios": {"memory": {"name": "memory"}}})
    assert set(json.loads(out.read_text())["scenarios"]) == {"memory", "other"}


def test_every_scenario_is_covered_here() -> None:
    assert set(SCENARIOS) == {"schedule", "overhead", "memory", "startup", "phoenix_recording"}
