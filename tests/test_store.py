"""The ``store`` plugin records every experiment, run and evaluation in SQLite.

Every test runs the real ``evalwire run`` in a subprocess on experiment
folders written into ``tmp_path``, then reads the store file with plain
``sqlite3``. The plugin is loaded with ``-p evalwire.builtin.store`` so the
tests say what they depend on (it is also an entry point).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from clihelpers import Result, environment, evalwire, write, write_experiment

from evalwire.models import Evaluation, Example, Run
from evalwire.store import db as store_db
from evalwire.store.provenance import files_hash
from evalwire.store.records import COMMIT_INTERVAL, Recorder

STORE = ("-p", "evalwire.builtin.store")

GRADED = """
def graded(output, expected):
    ok = output == expected["x"]
    return {
        "score": 1.0 if ok else 0.25,
        "label": "right" if ok else "wrong",
        "explanation": f"got {output!r}",
        "metadata": {"seen": output},
    }
"""


def project(root: Path) -> Path:
    """An empty project: ``evalwire.toml`` pins the project root to ``root``."""
    write(root / "evalwire.toml", "retries = 0\n")
    return root / "experiments"


def run(root: Path, *args: str, timeout: float = 60.0) -> Result:
    return evalwire(*STORE, "run", "-e", "experiments", *args, cwd=root, timeout=timeout)


def default_store(root: Path) -> Path:
    return root / ".evalwire" / "evalwire.db"


def read(path: Path, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of ``sql`` from the store at ``path``, opened read-only, as dicts."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, args)]
    finally:
        conn.close()


# -- what is recorded -----------------------------------------------------------


def test_every_experiment_run_and_evaluation_is_recorded_with_its_fields(
    tmp_path: Path,
) -> None:
    experiments = project(tmp_path)
    folder = write_experiment(
        experiments,
        "echo",
        evaluators={"graded": GRADED},
        dataset=[
            {"id": "a", "input": {"x": 1}, "expected": {"x": 1}, "metadata": {"tag": "t1"}},
            {"id": "b", "input": {"x": 2}, "expected": {"x": 3}},
        ],
    )
    done = run(tmp_path, "--repetitions", "2", "--metadata", "who=me", "--prefix", "nightly")
    assert done.returncode == 0, done.transcript

    path = default_store(tmp_path)
    [experiment] = read(path, "SELECT * FROM experiments")
    assert experiment["name"] == "echo"
    assert experiment["experiment_name"].startswith("nightly_echo_")
    assert experiment["dataset"] == "echo"
    assert experiment["dataset_version"]  # the files loader versions local datasets
    assert experiment["status"] == "passed"
    assert experiment["error"] is None
    assert (experiment["total"], experiment["completed"], experiment["task_errors"]) == (4, 4, 0)
    assert experiment["started_at"] <= experiment["ended_at"]
    assert json.loads(experiment["metadata"]) == {"who": "me"}
    assert json.loads(experiment["params"]) == {}
    # The task's file (the folder holds nothing else but an evaluator and the
    # dataset), and the evaluator's file.
    folder = folder.resolve()
    assert experiment["task_hash"] == files_hash([folder / "task.py"], folder)
    assert json.loads(experiment["evaluator_hashes"]) == {
        "graded": files_hash([folder / "graded.py"], folder)
    }
    assert experiment["git_commit"] is None  # tmp_path is not a git checkout
    scores = json.loads(experiment["scores"])
    assert scores == {"graded": {"mean": 0.625, "count": 4, "errors": 0}}

    runs = read(path, "SELECT * FROM runs ORDER BY idx, repetition")
    assert [(r["example_id"], r["idx"], r["repetition"]) for r in runs] == [
        ("a", 0, 1),
        ("a", 0, 2),
        ("b", 1, 1),
        ("b", 1, 2),
    ]
    first = runs[0]
    assert first["experiment_id"] == experiment["id"]
    assert json.loads(first["input"]) == {"x": 1}
    assert json.loads(first["expected"]) == {"x": 1}
    assert json.loads(first["metadata"]) == {"tag": "t1"}
    assert json.loads(first["output"]) == 1
    assert first["error"] is None
    assert first["attempts"] == 1
    assert first["started_at"] <= first["ended_at"]

    evaluations = read(
        path,
        "SELECT r.example_id, e.* FROM evaluations e JOIN runs r ON r.id = e.run_id "
        "ORDER BY r.idx, r.repetition",
    )
    assert len(evaluations) == 4
    right, wrong = evaluations[0], evaluations[2]
    assert (right["name"], right["score"], right["label"]) == ("graded", 1.0, "right")
    assert right["explanation"] == "got 1"
    assert json.loads(right["metadata"]) == {"seen": 1}
    assert right["error"] is None
    assert right["annotator_kind"] == "CODE"
    assert (wrong["example_id"], wrong["score"], wrong["label"]) == ("b", 0.25, "wrong")


def test_task_and_evaluator_errors_are_recorded_and_the_experiment_failed(
    tmp_path: Path,
) -> None:
    experiments = project(tmp_path)
    write_experiment(
        experiments,
        "flaky",
        task="""
        def task(input):
            if input["x"] == 1:
                raise ValueError("no ones")
            return input["x"]
        """,
        evaluators={
            "picky": """
            def picky(output):
                if output == 2:
                    raise KeyError("twos")
                return True
            """
        },
    )
    done = run(tmp_path)
    assert done.returncode == 1, done.transcript

    path = default_store(tmp_path)
    [experiment] = read(path, "SELECT status, task_errors, scores FROM experiments")
    assert experiment["status"] == "failed"
    assert experiment["task_errors"] == 1
    assert json.loads(experiment["scores"])["picky"]["errors"] == 1
    runs = {r["example_id"]: r for r in read(path, "SELECT * FROM runs")}
    assert "ValueError: no ones" in runs["ex1"]["error"]
    assert json.loads(runs["ex1"]["output"]) is None
    evaluations = {
        r["example_id"]: r
        for r in read(
            path, "SELECT r.example_id, e.* FROM evaluations e JOIN runs r ON r.id = e.run_id"
        )
    }
    assert "ex1" not in evaluations  # a failed task is not scored
    assert evaluations["ex2"]["score"] is None
    assert "KeyError" in evaluations["ex2"]["error"]
    assert evaluations["ex0"]["score"] == 1.0


def test_an_experiment_that_cannot_run_is_recorded_with_its_error(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    folder = write_experiment(experiments, "lost")
    (folder / "dataset.jsonl").unlink()
    done = run(tmp_path)
    assert done.returncode == 1, done.transcript

    [experiment] = read(default_store(tmp_path), "SELECT * FROM experiments")
    assert experiment["status"] == "error"
    assert "not found" in experiment["error"]
    assert read(default_store(tmp_path), "SELECT * FROM runs") == []


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_git_commit_of_the_project_is_recorded(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    git = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()

    done = run(tmp_path)
    assert done.returncode == 0, done.transcript
    [experiment] = read(default_store(tmp_path), "SELECT git_commit FROM experiments")
    assert experiment["git_commit"] == head
    # The store's folder ignores itself, so recording leaves the checkout clean.
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True
    )
    assert status.stdout == ""


# -- where it goes, and when nothing is recorded --------------------------------


def test_the_default_store_is_in_the_project_root_and_ignored_by_git(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    elsewhere = tmp_path / "sub" / "dir"
    elsewhere.mkdir(parents=True)

    done = evalwire(*STORE, "run", "-e", "../../experiments", cwd=elsewhere)
    assert done.returncode == 0, done.transcript
    assert default_store(tmp_path).is_file()
    assert (tmp_path / ".evalwire" / ".gitignore").read_text() == "*\n"
    assert not (elsewhere / ".evalwire").exists()


def test_a_dry_run_records_nothing(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    done = run(tmp_path, "--dry-run", "2")
    assert done.returncode == 0, done.transcript
    assert not (tmp_path / ".evalwire").exists()


def test_no_store_records_nothing(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    done = run(tmp_path, "--no-store")
    assert done.returncode == 0, done.transcript
    assert not (tmp_path / ".evalwire").exists()


def test_store_false_in_the_config_file_records_nothing(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write(tmp_path / "evalwire.toml", "store = false\n")
    write_experiment(experiments, "echo")
    done = run(tmp_path)
    assert done.returncode == 0, done.transcript
    assert not (tmp_path / ".evalwire").exists()


def test_store_path_records_there_and_not_in_the_default_place(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    done = run(tmp_path, "--store", "results/mine.db")
    assert done.returncode == 0, done.transcript
    assert not (tmp_path / ".evalwire").exists()
    assert len(read(tmp_path / "results" / "mine.db", "SELECT * FROM runs")) == 3


def test_store_in_the_config_file_is_relative_to_the_project_root(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write(tmp_path / "evalwire.toml", 'store = "data/evals.db"\n')
    write_experiment(experiments, "echo")
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    done = evalwire(*STORE, "run", "-e", "../experiments", cwd=elsewhere)
    assert done.returncode == 0, done.transcript
    assert len(read(tmp_path / "data" / "evals.db", "SELECT * FROM runs")) == 3


def test_an_output_json_cannot_hold_is_stored_as_its_repr_with_one_warning(
    tmp_path: Path,
) -> None:
    experiments = project(tmp_path)
    write_experiment(
        experiments,
        "things",
        task="""
        class Thing:
            def __init__(self, x):
                self.x = x

            def __repr__(self):
                return f"Thing({self.x})"

        def task(input):
            return Thing(input["x"])
        """,
        evaluators={"is_thing": "def is_thing(output):\n    return output.x >= 0\n"},
    )
    done = run(tmp_path)
    assert done.returncode == 0, done.transcript
    assert done.stderr.count("not JSON-serializable") == 1, done.transcript
    assert "things" in done.stderr

    runs = read(default_store(tmp_path), "SELECT output FROM runs ORDER BY idx")
    assert [json.loads(r["output"]) for r in runs] == ["Thing(0)", "Thing(1)", "Thing(2)"]


# -- files that are not our store ------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"\x00\x01 this is not a database " * 200, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["garbage", "sqlite-header-then-garbage"],
)
def test_a_corrupted_store_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    path = default_store(tmp_path)
    path.parent.mkdir()
    path.write_bytes(content)

    done = run(tmp_path)
    assert done.returncode == 2, done.transcript
    assert str(path) in done.stderr
    assert "not an evalwire store" in done.stderr
    assert "Traceback" not in done.stderr
    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["evalwire.db"]


@pytest.mark.parametrize("user_version", [0, 1])
def test_another_programs_database_is_refused_and_left_untouched(
    tmp_path: Path, user_version: int
) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    before = path.read_bytes()

    done = run(tmp_path, "--store", str(path))
    assert done.returncode == 2, done.transcript
    assert str(path) in done.stderr
    assert "another program's database" in done.stderr
    assert "customers" in done.stderr
    assert path.read_bytes() == before


def test_a_store_from_a_newer_evalwire_is_refused(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    assert run(tmp_path).returncode == 0
    path = default_store(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {store_db.SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()

    done = run(tmp_path)
    assert done.returncode == 2, done.transcript
    assert "newer evalwire" in done.stderr
    assert str(path) in done.stderr


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    write_experiment(experiments, "echo")
    path = tmp_path / "empty.db"
    path.touch()
    done = run(tmp_path, "--store", str(path))
    assert done.returncode == 0, done.transcript
    assert len(read(path, "SELECT * FROM runs")) == 3


# -- schema ------------------------------------------------------------------------


def test_a_new_store_is_at_the_current_schema_version_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = store_db.open_store(path, create=True)
    assert conn is not None
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_db.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        fmt = conn.execute("SELECT value FROM evalwire_meta WHERE key = 'format'").fetchone()
        assert fmt[0] == store_db.FORMAT
    finally:
        conn.close()


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    assert store_db.open_store(tmp_path / "none" / "s.db", create=False) is None
    assert not (tmp_path / "none").exists()


def test_a_new_migration_is_applied_once_to_an_existing_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    conn = store_db.open_store(path, create=True)
    assert conn is not None
    conn.close()
    calls: list[int] = []

    def next_version(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE experiments ADD COLUMN note TEXT")

    monkeypatch.setattr(store_db, "MIGRATIONS", [*store_db.MIGRATIONS, next_version])
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", len(store_db.MIGRATIONS))
    for _ in range(2):
        conn = store_db.open_store(path, create=True)
        assert conn is not None
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_db.SCHEMA_VERSION
        conn.execute("SELECT note FROM experiments").fetchall()
        conn.close()
    assert calls == [1]


def old_store(path: Path, version: int, status: str) -> sqlite3.Connection:
    """A store at schema ``version`` holding one record, ``old``, of ``status`` (uncommitted)."""
    conn = sqlite3.connect(path)
    for migrate in store_db.MIGRATIONS[:version]:
        migrate(conn)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(
        "INSERT INTO experiments (id, name, experiment_name, dataset, started_at, status) "
        "VALUES ('old', 'n', 'n_x', 'd', 1.0, ?)",
        (status,),
    )
    return conn


def test_a_version_2_store_gains_trace_ids_and_keeps_its_runs(tmp_path: Path) -> None:
    import dataclasses

    from evalwire.store.queries import iter_runs

    path = tmp_path / "s.db"
    conn = old_store(path, 2, "passed")  # as evalwire wrote it before traces
    conn.execute(
        "INSERT INTO runs (experiment_id, example_id, idx, repetition, input, expected, "
        "metadata, output, attempts, started_at, ended_at) "
        "VALUES ('old', 'ex0', 0, 1, '{}', '{}', '{}', '1', 1, 1.0, 2.0)"
    )
    conn.commit()
    conn.close()

    conn = store_db.open_store(path, create=True)
    assert conn is not None
    recorder = Recorder(conn, path)
    try:
        recorder.start_experiment(
            ("new", "n", "n_y", "d", None, None, "{}", "{}", "{}", None, 1.0, "running", 1)
        )
        recorder.add_run("new", dataclasses.replace(make_run(0), trace_id="ab" * 16))
    finally:
        assert recorder.close() == 0  # closes the connection too
    conn = store_db.open_store(path, create=False)
    assert conn is not None
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_db.SCHEMA_VERSION
    (old,) = iter_runs(conn, "old")
    (new,) = iter_runs(conn, "new")
    assert old.trace_id is None and old.output == 1
    assert new.to_run().trace_id == new.to_dict()["trace_id"] == "ab" * 16
    conn.close()


# -- durability and concurrency ----------------------------------------------------


def make_run(index: int) -> Run:
    return Run(
        example=Example(f"ex{index}", {"x": index}, {"x": index}),
        repetition=1,
        output=index,
        error=None,
        started_at=1.0,
        ended_at=2.0,
        evaluations=(Evaluation("exact", score=1.0),),
        index=index,
    )


def test_a_run_the_recorder_heard_is_committed_within_the_commit_interval(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    conn = store_db.open_store(path, create=True)
    assert conn is not None
    recorder = Recorder(conn, path)
    try:
        recorder.start_experiment(
            ("e1", "n", "n_x", "d", None, None, "{}", "{}", "{}", None, 1.0, "running", 3)
        )
        recorder.add_run("e1", make_run(0))
        time.sleep(0.2)  # a quiet moment: nothing else arrives to push it out
        recorder.add_run("e1", make_run(1))
        deadline = time.monotonic() + COMMIT_INTERVAL * 20
        count = 0
        while time.monotonic() < deadline and count < 2:
            count = len(read(path, "SELECT id FROM runs"))
            time.sleep(0.01)
        assert count == 2
    finally:
        assert recorder.close() == 0


def test_two_runs_writing_one_store_at_once_both_succeed(tmp_path: Path) -> None:
    experiments = project(tmp_path)
    slow = "import time\n\ndef task(input):\n    time.sleep(0.01)\n    return input['x']\n"
    dataset = [{"id": f"ex{i}", "input": {"x": i}, "expected": {"x": i}} for i in range(150)]
    write_experiment(experiments, "left", task=slow, dataset=dataset)
    write_experiment(experiments, "right", task=slow, dataset=dataset)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "evalwire",
                *STORE,
                "run",
                "-e",
                "experiments",
                "--name",
                name,
                "--task-concurrency",
                "3",
            ],
            cwd=tmp_path,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("left", "right")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err

    path = default_store(tmp_path)
    experiments_rows = read(path, "SELECT name, status, completed FROM experiments ORDER BY name")
    assert experiments_rows == [
        {"name": "left", "status": "passed", "completed": 150},
        {"name": "right", "status": "passed", "completed": 150},
    ]
    counts = read(
        path,
        "SELECT x.name, count(*) AS n FROM runs r JOIN experiments x ON x.id = r.experiment_id "
        "GROUP BY x.name ORDER BY x.name",
    )
    assert [c["n"] for c in counts] == [150, 150]
    assert len(read(path, "SELECT id FROM evaluations")) == 300


def count_runs(path: Path) -> int:
    try:
        return len(read(path, "SELECT id FROM runs"))
    except sqlite3.Error:  # not created yet
        return 0


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_kill_9_keeps_the_runs_already_recorded_and_the_store_readable(
    tmp_path: Path,
) -> None:
    experiments = project(tmp_path)
    dataset = [{"id": f"ex{i}", "input": {"x": i}, "expected": {"x": i}} for i in range(300)]
    write_experiment(
        experiments,
        "slow",
        task="import time\n\ndef task(input):\n    time.sleep(0.05)\n    return input['x']\n",
        dataset=dataset,
    )
    path = default_store(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evalwire",
            *STORE,
            "run",
            "-e",
            "experiments",
            "--task-concurrency",
            "2",
        ],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while seen < 10 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            seen = count_runs(path)
        assert seen >= 10, "no runs were recorded while the experiment ran"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert read(path, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    after = count_runs(path)
    assert seen <= after < len(dataset)
    [experiment] = read(path, "SELECT status, ended_at FROM experiments")
    assert experiment == {"status": "running", "ended_at": None}
    assert len(read(path, "SELECT id FROM evaluations")) == after

    # The store stays usable: the history shows the interrupted experiment,
    # and the next session records next to it.
    history = evalwire(*STORE, "history", "--json", cwd=tmp_path)
    assert history.returncode == 0, history.transcript
    [entry] = json.loads(history.stdout)
    assert (entry["status"], entry["completed"]) == ("interrupted", after)
    write_experiment(experiments, "slow", dataset=dataset[:3])
    done = run(tmp_path)
    assert done.returncode == 0, done.transcript
    assert len(read(path, "SELECT id FROM experiments")) == 2


# -- who writes a record: running or interrupted -------------------------------------

SLOW_TASK = "import time\n\ndef task(input):\n    time.sleep(0.05)\n    return input['x']\n"
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process start times come from /proc"
)


def start_slow_run(root: Path, examples: int = 300) -> subprocess.Popen[bytes]:
    """Start ``evalwire run`` on experiment ``slow`` (0.05 s a run), not waiting for it."""
    experiments = project(root)
    dataset = [{"id": f"ex{i}", "input": {"x": i}, "expected": {"x": i}} for i in range(examples)]
    write_experiment(experiments, "slow", task=SLOW_TASK, dataset=dataset)
    return subprocess.Popen(
        [sys.executable, "-m", "evalwire", *STORE, "run", "-e", "experiments"]
        + ["--task-concurrency", "2"],
        cwd=root,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_runs(path: Path, proc: subprocess.Popen[bytes], count: int) -> None:
    deadline = time.monotonic() + 60
    while count_runs(path) < count and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert count_runs(path) >= count, "no runs were recorded while the experiment ran"


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def history_json(root: Path, *args: str) -> list[dict[str, Any]]:
    done = evalwire(*STORE, "history", "--json", *args, cwd=root)
    assert done.returncode == 0, done.transcript
    entries: list[dict[str, Any]] = json.loads(done.stdout)
    return entries


def proc_stat(pid: int) -> tuple[str, int]:
    """(state, start time) of a process, read from ``/proc/PID/stat`` as ``man 5 proc`` says."""
    text = Path(f"/proc/{pid}/stat").read_text()
    after_name = text[text.rindex(")") + 2 :].split()
    return after_name[0], int(after_name[22 - 3])


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_record_still_being_written_is_running_and_names_its_writer(tmp_path: Path) -> None:
    proc = start_slow_run(tmp_path)
    try:
        wait_for_runs(default_store(tmp_path), proc, 5)
        [entry] = history_json(tmp_path)
        shown = evalwire(*STORE, "show", "last", cwd=tmp_path)
        assert proc.poll() is None, "the writer ended before the readers looked"
        assert entry["status"] == "running"
        assert (entry["writer"]["host"], entry["writer"]["pid"]) == (socket.gethostname(), proc.pid)
        if Path("/proc/self/stat").exists():
            assert entry["writer"]["started"] == proc_stat(proc.pid)[1]
            boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
            assert entry["writer"]["boot"] == boot
        assert shown.returncode == 0, shown.transcript
        host = socket.gethostname()
        assert f"status      running (pid {proc.pid} on {host})\n" in shown.stdout
    finally:
        kill_9(proc)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_record_whose_process_was_killed_is_shown_interrupted_and_left_as_stored(
    tmp_path: Path,
) -> None:
    proc = start_slow_run(tmp_path)
    try:
        wait_for_runs(default_store(tmp_path), proc, 5)
    finally:
        kill_9(proc)
    path = default_store(tmp_path)
    before = read(path, "SELECT * FROM experiments")

    history = evalwire(*STORE, "history", cwd=tmp_path)
    assert history.returncode == 0, history.transcript
    header, line = history.stdout.splitlines()
    assert line.split()[4] == "interrupted", history.stdout  # ID, date, time, NAME, STATUS
    shown = evalwire(*STORE, "show", "last", cwd=tmp_path)
    assert shown.returncode == 0, shown.transcript
    assert (
        f"status      interrupted (pid {proc.pid} on {socket.gethostname()} stopped before "
        "it finished; `evalwire run --resume` continues it)\n"
    ) in shown.stdout
    [entry] = history_json(tmp_path)
    assert entry["status"] == "interrupted"
    # Readers only show it: the row still says what its writer last wrote.
    after = read(path, "SELECT * FROM experiments")
    assert after == before
    assert after[0]["status"] == "running"
    assert json.loads(after[0]["writer"])["pid"] == proc.pid


@needs_proc
def test_a_live_process_that_reused_the_writers_pid_is_not_taken_for_it(tmp_path: Path) -> None:
    # This test process writes a record through the real recorder, so the
    # record's writer is alive; then its noted start time is changed, as if
    # the writer had died and the kernel had given its pid to this process.
    path = tmp_path / "s.db"
    conn = store_db.open_store(path, create=True)
    assert conn is not None
    recorder = Recorder(conn, path)
    try:
        recorder.start_experiment(
            ("e1", "n", "n_x", "d", None, None, "{}", "{}", "{}", None, 1.0, "running", 3)
        )
        recorder.add_run("e1", make_run(0))
        assert recorder.flush(30)
    finally:
        assert recorder.close() == 0
    [written] = read(path, "SELECT writer FROM experiments")
    writer = json.loads(written["writer"])
    assert (writer["pid"], writer["started"]) == (os.getpid(), proc_stat(os.getpid())[1])
    assert [e["status"] for e in history_json(tmp_path, "--store", str(path))] == ["running"]

    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "UPDATE experiments SET writer = ?",
            (json.dumps({**writer, "started": writer["started"] - 1}),),
        )
    conn.close()
    [entry] = history_json(tmp_path, "--store", str(path))
    assert (entry["status"], entry["completed"]) == ("interrupted", 1)


@needs_proc
def test_a_writer_is_gone_once_it_exits_even_before_it_is_reaped() -> None:
    from evalwire.store.writer import Writer, alive, this_process

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while proc_stat(child.pid)[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)  # exited, but not waited for: a zombie
    state, started = proc_stat(child.pid)
    assert state == "Z"
    here = this_process()
    noted = Writer(here.host, child.pid, started, here.boot)
    try:
        assert alive(noted) is False
    finally:
        child.wait(timeout=30)
    assert alive(noted) is False  # reaped: no such process at all
    assert alive(here) is True


@needs_proc
def test_a_writer_from_another_boot_is_gone() -> None:
    import dataclasses

    from evalwire.store.writer import alive, shown_status, this_process

    here = this_process()
    rebooted = dataclasses.replace(here, boot="00000000-0000-0000-0000-000000000000")
    assert alive(rebooted) is False
    assert shown_status("running", rebooted) == "interrupted"
    assert shown_status("running", here) == "running"


def test_a_writer_on_another_host_or_not_noted_leaves_the_record_running() -> None:
    import dataclasses

    from evalwire.store.writer import Writer, alive, shown_status, this_process

    elsewhere = dataclasses.replace(this_process(), host=socket.gethostname() + "-other", pid=1)
    assert alive(elsewhere) is None
    assert alive(None) is None
    assert shown_status("running", elsewhere) == "running"
    assert shown_status("running", None) == "running"
    gone = dataclasses.replace(this_process(), pid=2**22 + 1)  # above Linux's pid_max
    assert shown_status("running", gone) == "interrupted"
    assert shown_status("passed", gone) == "passed"  # only running records are interrupted
    assert Writer.from_json(elsewhere.to_json()) == elsewhere
    assert Writer.from_json('{"pid": "x"}') is None


def test_a_running_record_of_a_version_3_store_stays_running(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = old_store(path, 3, "running")  # as evalwire wrote it before writers
    conn.commit()
    conn.close()

    [entry] = history_json(tmp_path, "--store", str(path))
    assert (entry["id"], entry["status"], entry["writer"]) == ("old", "running", None)
    assert read(path, "PRAGMA user_version") == [{"user_version": store_db.SCHEMA_VERSION}]
    assert read(path, "SELECT writer FROM experiments") == [{"writer": None}]
