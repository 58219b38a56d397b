"""``evalwire run --resume`` continues a record; ``evalwire rescore`` scores it again.

Every test runs the real ``evalwire`` in subprocesses on a project in
``tmp_path``. The task writes one line per call (``MODEL EXAMPLE-ID``) to
``calls.txt``, so a test can say exactly which examples a command ran. An
interrupted session is a real ``kill -9`` of ``evalwire run`` once the store
holds some of its runs.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from clihelpers import Result, environment, evalwire, rows, write, write_experiment

STORE = ("-p", "evalwire.builtin.store")

#: Logs each call; sleeps TASK_SLEEP seconds; raises for the ids in TASK_FAILS.
TASK = """
import os
import time
from pathlib import Path

CALLS = Path(__file__).resolve().parents[2] / "calls.txt"

def task(input, example, params):
    with CALLS.open("a") as calls:
        calls.write(f"{params.get('model', '-')} {example.id}\\n")
    time.sleep(float(os.environ.get("TASK_SLEEP", "0")))
    if example.id in os.environ.get("TASK_FAILS", "").split(","):
        raise ValueError(f"outage at {example.id}")
    return input["x"]
"""

HALF_MARKS = """
def exact_match(output, expected):
    return 0.5 if output == expected["x"] else 0.0
"""

skip_on_windows = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project holding experiment ``qa`` on 40 examples."""
    write(tmp_path / "evalwire.toml", "retries = 0\n")
    write_experiment(tmp_path / "experiments", "qa", task=TASK, dataset=rows(40))
    return tmp_path


def cli(root: Path, *args: str, **variables: str) -> Result:
    return evalwire(*STORE, *args, cwd=root, env=environment(**variables))


def run(root: Path, *args: str, **variables: str) -> Result:
    return cli(root, "run", "-e", "experiments", *args, **variables)


def calls(root: Path) -> list[tuple[str, str]]:
    """Every task call so far, in order, as (model, example id)."""
    path = root / "calls.txt"
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]


def read(root: Path, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of ``sql`` from the project's store, read-only, as dicts ([] before it exists)."""
    path = root / ".evalwire" / "evalwire.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, args)]
    except sqlite3.OperationalError:  # the tables are not created yet
        return []
    finally:
        conn.close()


def recorded(root: Path, experiment: str) -> list[tuple[str, int]]:
    """(example id, repetition) of every run recorded for experiments named ``experiment``."""
    return [
        (r["example_id"], r["repetition"])
        for r in read(
            root,
            "SELECT r.example_id, r.repetition FROM runs r "
            "JOIN experiments e ON e.id = r.experiment_id WHERE e.name = ?",
            experiment,
        )
    ]


def experiments(root: Path) -> list[dict[str, Any]]:
    return read(root, "SELECT * FROM experiments ORDER BY started_at, rowid")


def start_run(root: Path, *args: str, sleep: float = 0.05) -> subprocess.Popen[bytes]:
    """Start ``evalwire run ARGS`` with a task that sleeps ``sleep`` seconds a call."""
    return subprocess.Popen(
        [sys.executable, "-m", "evalwire", *STORE, "run", "-e", "experiments", *args],
        cwd=root,
        env=environment(TASK_SLEEP=str(sleep)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_runs(root: Path, proc: subprocess.Popen[bytes], experiment: str, runs: int) -> None:
    """Wait until ``runs`` runs of ``experiment`` are recorded, while ``proc`` still runs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(recorded(root, experiment)) >= runs:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be caught running"


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def killed_run(root: Path, *args: str, experiment: str = "qa", runs: int = 6) -> int:
    """Start ``evalwire run ARGS`` with a slow task; ``kill -9`` it once ``runs`` runs
    of ``experiment`` are recorded. Its pid."""
    proc = start_run(root, *args)
    try:
        wait_for_runs(root, proc, experiment, runs)
    finally:
        kill_9(proc)
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


def history(root: Path) -> list[dict[str, Any]]:
    done = cli(root, "history", "--json")
    assert done.returncode == 0, done.transcript
    entries: list[dict[str, Any]] = json.loads(done.stdout)
    return entries


# -- resume ------------------------------------------------------------------------


@skip_on_windows
def test_resume_after_kill_9_runs_only_the_missing_examples_into_the_same_record(
    root: Path,
) -> None:
    killed_pid = killed_run(root, "--task-concurrency", "2")
    [killed] = experiments(root)
    assert killed["status"] == "running"
    assert json.loads(killed["writer"])["pid"] == killed_pid
    assert [e["status"] for e in history(root)] == ["interrupted"]
    done_before = {example for example, _ in recorded(root, "qa")}
    called_before = len(calls(root))

    resumed = run(root, "--resume", "--task-concurrency", "4")
    assert resumed.returncode == 0, resumed.transcript
    assert f"qa: resuming {killed['id'][:8]}: {len(done_before)} of 40 runs" in resumed.stderr

    called_now = [example for _, example in calls(root)[called_before:]]
    assert sorted(called_now) == sorted({f"ex{i}" for i in range(40)} - done_before)
    [record] = experiments(root)
    assert record["id"] == killed["id"]
    assert record["started_at"] == killed["started_at"]
    assert (record["status"], record["completed"], record["total"]) == ("passed", 40, 40)
    assert json.loads(record["writer"])["pid"] != killed_pid  # the resuming process wrote it
    assert sorted(recorded(root, "qa")) == sorted((f"ex{i}", 1) for i in range(40))
    assert len(read(root, "SELECT id FROM evaluations")) == 40
    [entry] = history(root)
    assert (entry["id"], entry["completed"], entry["status"]) == (killed["id"], 40, "passed")


@skip_on_windows
def test_resume_does_not_take_over_a_record_a_live_process_is_still_writing(
    root: Path,
) -> None:
    writing = start_run(root, "--task-concurrency", "1", sleep=0.5)
    try:
        wait_for_runs(root, writing, "qa", 2)
        [live] = experiments(root)
        resumed = run(root, "--resume")
        assert writing.poll() is None, "the first run ended before the resume looked"
    finally:
        kill_9(writing)
    assert resumed.returncode == 0, resumed.transcript
    assert (
        f"qa: not resuming {live['id'][:8]}: it is still being recorded by pid {writing.pid} on "
    ) in resumed.stderr
    assert "starting afresh" in resumed.stderr
    first, fresh = experiments(root)
    assert first["id"] == live["id"]
    assert json.loads(first["writer"])["pid"] == writing.pid  # not reopened by the resume
    assert (fresh["status"], fresh["completed"]) == ("passed", 40)
    # What the first process recorded is still there: the resume deleted none of it.
    first_runs = read(root, "SELECT count(*) AS n FROM runs WHERE experiment_id = ?", live["id"])
    assert first_runs[0]["n"] >= 2


def test_resume_retries_the_runs_whose_task_failed_and_replaces_them(root: Path) -> None:
    first = run(root, TASK_FAILS="ex3,ex7")
    assert first.returncode == 1, first.transcript
    [failed] = experiments(root)
    assert (failed["status"], failed["task_errors"]) == ("failed", 2)
    (root / "calls.txt").unlink()

    resumed = run(root, "--resume")
    assert resumed.returncode == 0, resumed.transcript
    assert "38 of 40 runs recorded, 2 to run (retrying 2 whose task failed)" in resumed.stderr
    assert sorted(calls(root)) == [("-", "ex3"), ("-", "ex7")]
    [record] = experiments(root)
    assert record["id"] == failed["id"]
    assert (record["status"], record["completed"], record["task_errors"]) == ("passed", 40, 0)
    assert read(root, "SELECT count(*) AS n FROM runs WHERE error IS NOT NULL") == [{"n": 0}]
    assert len(recorded(root, "qa")) == 40


def test_resume_of_a_complete_record_runs_nothing_and_reports_it_again(root: Path) -> None:
    assert run(root).returncode == 0
    [complete] = experiments(root)
    (root / "calls.txt").unlink()

    resumed = run(root, "--resume")
    assert resumed.returncode == 0, resumed.transcript
    assert f"qa: {complete['id'][:8]} is complete (40 runs recorded); nothing to run" in (
        resumed.stderr
    )
    assert calls(root) == []
    [record] = experiments(root)
    assert (record["id"], record["status"], record["completed"]) == (complete["id"], "passed", 40)
    assert len(recorded(root, "qa")) == 40


def test_resume_with_nothing_recorded_says_so_once_and_starts_afresh(root: Path) -> None:
    done = run(root, "--resume")
    assert done.returncode == 0, done.transcript
    assert done.stderr.count("qa: nothing to resume; starting afresh") == 1
    [record] = experiments(root)
    assert record["completed"] == 40


@skip_on_windows
@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("dataset", "the dataset changed (version"),
        ("task", "the task changed"),
        ("helper", "the task changed"),
        ("evaluator", "the evaluators changed (exact_match edited)"),
    ],
)
def test_resume_is_refused_when_the_dataset_or_the_code_changed(
    root: Path, change: str, why: str
) -> None:
    killed_run(root)
    [killed] = experiments(root)
    folder = root / "experiments" / "qa"
    if change == "dataset":
        with (folder / "dataset.jsonl").open("a") as dataset:
            dataset.write(json.dumps({"id": "new", "input": {"x": 1}, "expected": {"x": 1}}))
    elif change == "task":
        write(folder / "task.py", TASK.replace('return input["x"]', 'return int(input["x"])'))
    elif change == "helper":  # code the task may import, beside it
        write(folder / "_helpers.py", "LIMIT = 3\n")
    else:
        write(folder / "exact_match.py", HALF_MARKS)
    called_before = len(calls(root))

    done = run(root, "--resume")
    assert done.returncode == 0, done.transcript
    assert f"qa: not resuming {killed['id'][:8]}: {why}" in done.stderr
    assert "starting afresh" in done.stderr
    total = 41 if change == "dataset" else 40
    assert len(calls(root)) - called_before == total  # every example ran again
    old, new = experiments(root)
    assert old["id"] == killed["id"] and old["status"] == "running"
    assert new["id"] != killed["id"] and (new["status"], new["completed"]) == ("passed", total)


def test_resume_is_refused_when_the_repetitions_changed(root: Path) -> None:
    assert run(root).returncode == 0
    [first] = experiments(root)
    done = run(root, "--resume", "--repetitions", "2")
    assert done.returncode == 0, done.transcript
    assert f"qa: not resuming {first['id'][:8]}: the repetitions changed (40 → 80 runs)" in (
        done.stderr
    )
    assert [r["completed"] for r in experiments(root)] == [40, 80]


@skip_on_windows
def test_resume_of_a_killed_sweep_runs_only_the_missing_arm_units(root: Path) -> None:
    killed_run(root, "--matrix", "model=a,b", "--task-concurrency", "2", experiment="qa[model=b]")
    arm_a, arm_b = experiments(root)
    assert (arm_a["name"], arm_a["status"]) == ("qa[model=a]", "passed")
    assert (arm_b["name"], arm_b["status"]) == ("qa[model=b]", "running")
    done_b = {example for example, _ in recorded(root, "qa[model=b]")}
    called_before = len(calls(root))

    resumed = run(root, "--resume", "--matrix", "model=a,b")
    assert resumed.returncode == 0, resumed.transcript
    assert f"qa[model=a]: {arm_a['id'][:8]} is complete" in resumed.stderr
    assert f"qa[model=b]: resuming {arm_b['id'][:8]}" in resumed.stderr

    called_now = calls(root)[called_before:]
    assert {model for model, _ in called_now} == {"b"}
    assert sorted(e for _, e in called_now) == sorted({f"ex{i}" for i in range(40)} - done_b)
    records = experiments(root)
    assert [(r["id"], r["status"], r["completed"]) for r in records] == [
        (arm_a["id"], "passed", 40),
        (arm_b["id"], "passed", 40),
    ]
    assert len(recorded(root, "qa[model=b]")) == 40


# -- rescore -----------------------------------------------------------------------


def test_rescore_scores_the_stored_outputs_with_the_current_evaluators_without_the_task(
    root: Path,
) -> None:
    first = run(root, "--repetitions", "2", TASK_FAILS="ex5")
    assert first.returncode == 1, first.transcript
    [original] = experiments(root)
    write(root / "experiments" / "qa" / "exact_match.py", HALF_MARKS)
    called_before = calls(root)

    done = cli(root, "rescore", original["id"][:8])
    assert done.returncode == 1, done.transcript  # the recorded task errors stay errors
    assert calls(root) == called_before
    original_record, rescored = experiments(root)
    assert original_record["id"] == original["id"]
    assert f"as {rescored['id'][:8]}" in done.stdout
    assert f"evalwire compare {original['id'][:8]} {rescored['id'][:8]}" in done.stdout

    assert rescored["name"] == "qa"
    assert json.loads(rescored["metadata"]) == {"rescored_from": original["id"]}
    assert rescored["task_hash"] == original["task_hash"]
    assert rescored["dataset_version"] == original["dataset_version"]
    assert rescored["evaluator_hashes"] != original["evaluator_hashes"]
    assert json.loads(rescored["scores"])["exact_match"] == {"mean": 0.5, "count": 78, "errors": 0}
    runs = read(
        root,
        "SELECT example_id, idx, repetition, output, error FROM runs "
        "WHERE experiment_id = ? ORDER BY idx, repetition",
        rescored["id"],
    )
    before = read(
        root,
        "SELECT example_id, idx, repetition, output, error FROM runs "
        "WHERE experiment_id = ? ORDER BY idx, repetition",
        original["id"],
    )
    assert runs == before
    assert {r["error"] for r in runs if r["example_id"] == "ex5"} == {"ValueError: outage at ex5"}


def test_resume_skips_a_rescored_record_and_sees_the_edited_evaluator(root: Path) -> None:
    assert run(root).returncode == 0
    [original] = experiments(root)
    write(root / "experiments" / "qa" / "exact_match.py", HALF_MARKS)
    assert cli(root, "rescore", "last").returncode == 0

    done = run(root, "--resume")
    assert done.returncode == 0, done.transcript
    assert f"qa: not resuming {original['id'][:8]}: the evaluators changed" in done.stderr


def test_rescore_of_a_sweep_arm_keeps_its_name_and_arm(root: Path) -> None:
    assert run(root, "--matrix", "model=a,b").returncode == 0
    arm_b = next(r for r in experiments(root) if r["name"] == "qa[model=b]")
    called_before = calls(root)

    done = cli(root, "rescore", arm_b["id"])
    assert done.returncode == 0, done.transcript
    assert calls(root) == called_before
    rescored = experiments(root)[-1]
    assert rescored["name"] == "qa[model=b]"
    assert json.loads(rescored["params"]) == json.loads(arm_b["params"])
    metadata = json.loads(rescored["metadata"])
    assert metadata["rescored_from"] == arm_b["id"]
    assert metadata["arm"] == {"model": "b"}
    assert json.loads(rescored["scores"])["exact_match"]["mean"] == 1.0


def test_rescore_of_an_unknown_id_exits_2(root: Path) -> None:
    assert run(root).returncode == 0
    done = cli(root, "rescore", "nosuchid")
    assert done.returncode == 2, done.transcript
    assert "no experiment 'nosuchid'" in done.stderr
