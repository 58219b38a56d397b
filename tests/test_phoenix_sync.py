"""Phoenix outages: the run goes on, the store keeps everything, ``evalwire sync`` posts it later.

Against the session's real Phoenix server: a run loses Phoenix half-way (the
server is stopped, then started again on the same database), and ``evalwire
sync`` posts exactly what Phoenix lacks, read back through Phoenix's own REST
API. The other tests reach the same states without an outage, by editing
what the store or Phoenix holds, so only one test pays for a restart.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clihelpers import EXACT_MATCH, Result, evalwire, rows, write, write_experiment

pytest.register_assert_rewrite("phoenix_fixture")
from phoenix_fixture import (  # noqa: E402
    PhoenixServer,
    create_dataset,
    experiments_of,
    recorded_runs,
    unique,
)

PLUGINS = ("-p", "evalwire.builtin.phoenix", "-p", "evalwire.builtin.store")

GRADE = """
def grade(output, input):
    return (0.5, "half", f"x={input['x']}")
"""

Env = Callable[..., dict[str, str]]


# -- helpers ------------------------------------------------------------------------


def project(root: Path, name: str, task: str | None = None, settings: str = "") -> None:
    """A project whose experiment ``name`` runs on the Phoenix dataset ``name`` only."""
    write(root / "evalwire.toml", f"retries = 0\n{settings}")
    kwargs = {"task": task} if task is not None else {}
    folder = write_experiment(
        root / "experiments",
        name,
        evaluators={"exact_match": EXACT_MATCH, "grade": GRADE},
        **kwargs,
    )
    (folder / "dataset.jsonl").unlink()


def run(root: Path, server: PhoenixServer, env: dict[str, str]) -> Result:
    return evalwire(
        *PLUGINS, "run", "-e", "experiments", "--phoenix", server.url, cwd=root, env=env
    )


def sync(root: Path, server: PhoenixServer, env: dict[str, str], *args: str) -> Result:
    return evalwire(*PLUGINS, "sync", "--phoenix", server.url, *args, cwd=root, env=env)


def store(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".evalwire" / "evalwire.db")


def record(root: Path) -> dict[str, Any]:
    """The store's only record, with its ``extra`` decoded."""
    conn = store(root)
    try:
        conn.row_factory = sqlite3.Row
        (row,) = conn.execute("SELECT * FROM experiments").fetchall()
        found = dict(row)
    finally:
        conn.close()
    found["extra"] = json.loads(found["extra"])
    return found


def set_extra(root: Path, record_id: str, extra: dict[str, Any]) -> None:
    conn = store(root)
    try:
        with conn:
            conn.execute(
                "UPDATE experiments SET extra = ? WHERE id = ?", (json.dumps(extra), record_id)
            )
    finally:
        conn.close()


def summary(result: Result, record_id: str) -> list[str]:
    """The cells of ``sync``'s summary line for one record."""
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(record_id[:12])]
    return re.split(r"\s{2,}", line.strip())


def runs_so_far(api: Any, experiment_id: str) -> list[dict[str, Any]]:
    """The runs Phoenix holds for an experiment that may have none yet."""
    response = api.get(f"/v1/experiments/{experiment_id}/json")
    if response.status_code == 404:  # Phoenix's answer while there is no run
        return []
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found


def held(api: Any, experiment_id: str) -> Counter[tuple[int, int]]:
    """How many times Phoenix holds each (x, repetition) of an experiment."""
    return Counter(
        (r["input"]["x"], r["repetition_number"]) for r in recorded_runs(api, experiment_id)
    )


def assert_complete(api: Any, experiment_id: str, count: int) -> None:
    """Phoenix holds every run once, each with both its evaluations."""
    runs = recorded_runs(api, experiment_id)
    assert held(api, experiment_id) == Counter({(x, 1): 1 for x in range(count)})
    for found in runs:
        notes = {a["name"]: a for a in found["annotations"]}
        assert sorted(notes) == ["exact_match", "grade"], found
        assert notes["exact_match"]["score"] == 1.0
        assert notes["grade"]["explanation"] == f"x={found['input']['x']}"
        assert found["output"] == found["input"]["x"]


# -- an outage -----------------------------------------------------------------------


def test_runs_lost_in_an_outage_are_kept_and_sync_posts_them_once(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_api: Any, phoenix_env: Env
) -> None:
    name = unique("outage")
    created = create_dataset(phoenix_api, name, rows(40))
    gate = tmp_path / "go"
    # The first ten examples run at once; the rest wait for the outage.
    task = f"""
    import pathlib, time

    def task(input):
        if input["x"] >= 10:
            while not pathlib.Path({str(gate)!r}).exists():
                time.sleep(0.02)
        time.sleep(0.05)
        return input["x"]
    """
    settings = "task_concurrency = 2\n[phoenix]\nattempts = 2\nbackoff = 0.1\n"
    project(tmp_path, name, task, settings)
    env = phoenix_env()
    command = [sys.executable, "-m", "evalwire", *PLUGINS, "run", "-e", "experiments"]
    proc = subprocess.Popen(
        [*command, "--phoenix", phoenix_server.url],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            found = experiments_of(phoenix_api, created["dataset_id"])
            runs = runs_so_far(phoenix_api, found[0]["id"]) if found else []
            if len(runs) == 10 and all(len(r["annotations"]) == 2 for r in runs):
                break
            time.sleep(0.05)
        phoenix_server.stop()
        gate.touch()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        phoenix_server.start()  # the server is the whole session's: always bring it back

    assert proc.returncode == 1, stdout + stderr
    assert f"{name}: passed, 40/40 runs" in stdout + stderr  # the run went on
    assert re.search(
        rf"phoenix: {name}: 30 of 40 run\(s\) and 60 of 80 evaluation\(s\) could not be "
        rf"posted: cannot reach Phoenix at {re.escape(phoenix_server.url)}",
        stderr,
    ), stderr
    stored = record(tmp_path)
    assert f"`evalwire sync --phoenix {phoenix_server.url} {stored['id'][:12]}`" in stderr
    assert stored["completed"] == 40
    (experiment,) = experiments_of(phoenix_api, created["dataset_id"])
    assert stored["extra"]["phoenix_experiment_id"] == experiment["id"]
    assert sum(held(phoenix_api, experiment["id"]).values()) == 10

    first = sync(tmp_path, phoenix_server, env)

    assert first.returncode == 0, first.transcript
    assert summary(first, stored["id"]) == [
        stored["id"][:12],
        name,
        experiment["id"],
        "10 run(s)",
        "30 run(s), 60 evaluation(s)",
        "0",
    ]
    assert_complete(phoenix_api, experiment["id"], 40)

    again = sync(tmp_path, phoenix_server, env)

    assert again.returncode == 0, again.transcript
    assert summary(again, stored["id"])[3:] == ["40 run(s)", "0 run(s)", "0"]
    assert_complete(phoenix_api, experiment["id"], 40)
    assert len(experiments_of(phoenix_api, created["dataset_id"])) == 1


# -- the same states, without an outage ------------------------------------------------


def test_sync_creates_the_experiment_phoenix_never_made(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_api: Any, phoenix_env: Env
) -> None:
    # As when Phoenix went away between loading the dataset and creating the
    # experiment: the record knows its dataset, but no experiment.
    name = unique("uncreated")
    created = create_dataset(phoenix_api, name, rows(4))
    project(tmp_path, name)
    env = phoenix_env()
    assert run(tmp_path, phoenix_server, env).returncode == 0
    stored = record(tmp_path)
    (original,) = experiments_of(phoenix_api, created["dataset_id"])
    phoenix_api.delete(f"/v1/experiments/{original['id']}").raise_for_status()
    extra = {
        k: v
        for k, v in stored["extra"].items()
        if k not in ("phoenix_experiment_id", "phoenix_url")
    }
    set_extra(tmp_path, stored["id"], extra)

    first = sync(tmp_path, phoenix_server, env, stored["id"][:8])

    assert first.returncode == 0, first.transcript
    (made,) = experiments_of(phoenix_api, created["dataset_id"])
    assert summary(first, stored["id"])[2:] == [
        f"{made['id']} (created)",
        "0 run(s)",
        "4 run(s), 8 evaluation(s)",
        "0",
    ]
    assert made["name"] == original["name"] == stored["experiment_name"]
    assert made["metadata"] == original["metadata"] == {"dataset": name, "run_by": "evalwire"}
    assert made["dataset_version_id"] == original["dataset_version_id"] == created["version_id"]
    assert made["repetitions"] == original["repetitions"]
    assert_complete(phoenix_api, made["id"], 4)
    assert record(tmp_path)["extra"]["phoenix_experiment_id"] == made["id"]

    again = sync(tmp_path, phoenix_server, env, stored["id"][:8])

    assert summary(again, stored["id"])[2:] == [made["id"], "4 run(s)", "0 run(s)", "0"]
    assert len(experiments_of(phoenix_api, created["dataset_id"])) == 1


def test_sync_finds_an_experiment_made_after_the_record_was_written(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_api: Any, phoenix_env: Env
) -> None:
    # Phoenix answered the "create" only after the experiment had finished:
    # the record has no experiment id, but Phoenix has the experiment and its runs.
    name = unique("late")
    created = create_dataset(phoenix_api, name, rows(3))
    project(tmp_path, name)
    env = phoenix_env()
    assert run(tmp_path, phoenix_server, env).returncode == 0
    stored = record(tmp_path)
    (experiment,) = experiments_of(phoenix_api, created["dataset_id"])
    assert stored["extra"].pop("phoenix_experiment_id") == experiment["id"]
    set_extra(tmp_path, stored["id"], stored["extra"])

    result = sync(tmp_path, phoenix_server, env)

    assert result.returncode == 0, result.transcript
    assert summary(result, stored["id"])[2:] == [experiment["id"], "3 run(s)", "0 run(s)", "0"]
    assert len(experiments_of(phoenix_api, created["dataset_id"])) == 1
    assert record(tmp_path)["extra"]["phoenix_experiment_id"] == experiment["id"]


def test_sync_posts_the_evaluations_phoenix_lacks_on_runs_it_holds(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_api: Any, phoenix_env: Env
) -> None:
    name = unique("evals")
    create_dataset(phoenix_api, name, rows(2))
    project(tmp_path, name)
    env = phoenix_env()
    assert run(tmp_path, phoenix_server, env).returncode == 0
    stored = record(tmp_path)
    conn = store(tmp_path)
    try:
        with conn:  # an evaluation the store has and Phoenix never heard of
            conn.execute(
                "INSERT INTO evaluations (run_id, name, score, label, metadata, annotator_kind) "
                "SELECT id, 'tone', 0.25, 'flat', '{}', 'LLM' FROM runs WHERE idx = 1"
            )
    finally:
        conn.close()

    result = sync(tmp_path, phoenix_server, env)

    assert result.returncode == 0, result.transcript
    assert summary(result, stored["id"])[3:] == ["2 run(s)", "0 run(s), 1 evaluation(s)", "0"]
    by_x = {
        r["input"]["x"]: r
        for r in recorded_runs(phoenix_api, stored["extra"]["phoenix_experiment_id"])
    }
    tone = {a["name"]: a for a in by_x[1]["annotations"]}["tone"]
    assert (tone["score"], tone["label"], tone["annotator_kind"]) == (0.25, "flat", "LLM")
    assert "tone" not in {a["name"] for a in by_x[0]["annotations"]}
    assert summary(sync(tmp_path, phoenix_server, env), stored["id"])[3:] == [
        "2 run(s)",
        "0 run(s)",
        "0",
    ]


def test_a_record_whose_dataset_was_local_has_nothing_to_sync(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_env: Env
) -> None:
    write(tmp_path / "evalwire.toml", "retries = 0\n")
    write_experiment(tmp_path / "experiments", "local")
    env = phoenix_env()
    assert evalwire(*PLUGINS, "run", "-e", "experiments", cwd=tmp_path, env=env).returncode == 0
    record_id = record(tmp_path)["id"]

    everything = sync(tmp_path, phoenix_server, env)
    named = sync(tmp_path, phoenix_server, env, record_id[:8])

    assert everything.returncode == 0, everything.transcript
    assert "nothing to sync" in everything.stdout
    assert named.returncode == 2, named.transcript
    assert f"{record_id[:12]} (local) has nothing to sync" in named.stderr
    assert "Traceback" not in named.output


def test_a_record_made_against_another_phoenix_is_skipped_saying_where(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_env: Env
) -> None:
    write(tmp_path / "evalwire.toml", "retries = 0\n")
    write_experiment(tmp_path / "experiments", "elsewhere")
    env = phoenix_env()
    assert evalwire(*PLUGINS, "run", "-e", "experiments", cwd=tmp_path, env=env).returncode == 0
    record_id = record(tmp_path)["id"]
    other = "http://phoenix.example:6006"
    set_extra(
        tmp_path, record_id, {"phoenix_dataset_id": "RGF0YXNldDo5OTk=", "phoenix_server": other}
    )

    result = sync(tmp_path, phoenix_server, env)

    assert result.returncode == 0, result.transcript
    assert summary(result, record_id)[2] == "skipped"
    assert (
        f"skipped: recorded in Phoenix at {other}; sync it with --phoenix {other}" in result.stdout
    )
