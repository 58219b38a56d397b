"""The ``phoenix`` plugin against a real Phoenix server: datasets in, experiments recorded.

Every test makes its own datasets on the session's server (names carry a
random suffix), runs ``evalwire`` as a subprocess, and reads what Phoenix
holds back through Phoenix's own REST API.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clihelpers import EXACT_MATCH, Result, evalwire, rows, write, write_experiment

# The fixture module is a plugin (below) whose helpers are imported too: let
# pytest rewrite its asserts although it is imported before being registered.
pytest.register_assert_rewrite("phoenix_fixture")
from phoenix_fixture import (  # noqa: E402
    PhoenixServer,
    create_dataset,
    experiments_of,
    find_dataset,
    free_port,
    recorded_runs,
    unique,
)

pytest_plugins = ["phoenix_fixture"]

#: Until the entry point is registered, load the plugin by module path; keep the store out.
PLUGINS = ("-p", "evalwire.builtin.phoenix", "-p", "no:store")
SECRET = "sk-secret-123"

GRADE = """
def grade(output, input):
    return (0.5, "half", f"x={input['x']}")
"""

Env = Callable[..., dict[str, str]]


# -- helpers ------------------------------------------------------------------


@pytest.fixture
def env(phoenix_env: Env) -> Env:
    return phoenix_env


@pytest.fixture
def api(phoenix_api: Any) -> Any:
    return phoenix_api


def run(tmp_path: Path, *args: str, env: dict[str, str]) -> Result:
    return evalwire(*PLUGINS, "run", "-e", "experiments", *args, cwd=tmp_path, env=env)


def experiment(tmp_path: Path, name: str, **kwargs: Any) -> Path:
    """An experiment folder with no local dataset: its dataset can only come from Phoenix."""
    folder = write_experiment(tmp_path / "experiments", name, **kwargs)
    (folder / "dataset.jsonl").unlink()
    return folder


def dataset_id(api: Any, name: str) -> str:
    found = find_dataset(api, name)
    assert found is not None, f"no dataset {name}"
    return str(found["id"])


def annotations(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in run["annotations"]}


# -- recording ----------------------------------------------------------------


def test_run_records_the_experiment_its_runs_and_evaluations(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("echo")
    created = create_dataset(api, name, rows(3))
    experiment(
        tmp_path,
        name,
        task='params = {"k": 3}\n\ndef task(input):\n    return input["x"]\n',
        evaluators={"exact_match": EXACT_MATCH, "grade": GRADE},
    )

    result = run(
        tmp_path,
        "--phoenix",
        phoenix_server.url,
        "--repetitions",
        "2",
        "--metadata",
        "team=qa",
        env=env(),
    )

    assert result.returncode == 0, result
    (recorded,) = experiments_of(api, created["dataset_id"])
    assert re.fullmatch(rf"eval_{name}_\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d", recorded["name"])
    assert recorded["metadata"] == {"dataset": name, "run_by": "evalwire", "team": "qa", "k": 3}
    assert recorded["repetitions"] == 2
    assert recorded["dataset_version_id"] == created["version_id"]
    runs = recorded_runs(api, recorded["id"])
    assert sorted((r["input"]["x"], r["repetition_number"], r["output"]) for r in runs) == [
        (x, repetition, x) for x in range(3) for repetition in (1, 2)
    ]
    for run_ in runs:
        found = annotations(run_)
        assert found["exact_match"]["score"] == 1.0
        assert found["exact_match"]["label"] == "True"
        assert found["exact_match"]["annotator_kind"] == "CODE"
        assert (found["grade"]["score"], found["grade"]["label"]) == (0.5, "half")
        assert found["grade"]["explanation"] == f"x={run_['input']['x']}"
    link = f"{phoenix_server.url}/datasets/{created['dataset_id']}/compare?experimentId="
    assert f"{link}{recorded['id']}" in result.stdout


def test_task_and_evaluator_errors_are_recorded_as_errors(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("errors")
    created = create_dataset(api, name, rows(3))
    experiment(
        tmp_path,
        name,
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
                    raise RuntimeError("no twos")
                return True
            """
        },
    )

    result = run(tmp_path, "--phoenix", phoenix_server.url, "--retries", "0", env=env())

    assert result.returncode == 1, result  # the experiment failed; Phoenix took everything
    assert "could not be posted" not in result.output
    (recorded,) = experiments_of(api, created["dataset_id"])
    by_x = {r["input"]["x"]: r for r in recorded_runs(api, recorded["id"])}
    assert "ValueError: no ones" in by_x[1]["error"]
    assert by_x[1]["annotations"] == []
    assert "RuntimeError: no twos" in annotations(by_x[2])["picky"]["error"]
    assert annotations(by_x[0])["picky"]["score"] == 1.0


def test_dry_run_posts_nothing(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("dry")
    created = create_dataset(api, name, rows(3))
    experiment(tmp_path, name)

    result = run(tmp_path, "--phoenix", phoenix_server.url, "--dry-run", "2", env=env())

    assert result.returncode == 0, result
    assert experiments_of(api, created["dataset_id"]) == []
    assert "compare?experimentId=" not in result.output


def test_a_client_given_to_the_python_api_is_used(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("api")
    created = create_dataset(api, name, rows(2))
    experiment(tmp_path, name)
    script = write(
        tmp_path / "script.py",
        f"""
        from phoenix.client import Client
        from evalwire import ExperimentRunner

        runner = ExperimentRunner(
            "experiments",
            phoenix_client=Client(base_url={phoenix_server.url!r}),
            plugin_args=["evalwire.builtin.phoenix", "no:store"],
            print_summary=False,
        )
        (result,) = runner.run()
        print(result.extra["phoenix_experiment_id"])
        """,
    )

    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    (recorded,) = experiments_of(api, created["dataset_id"])
    assert proc.stdout.strip() == recorded["id"]
    runs = recorded_runs(api, recorded["id"])
    assert len(runs) == 2
    # Task spans go to the given client's server too: every run links to a trace.
    assert all(r["trace_id"] for r in runs) and "traces:" not in proc.stderr


# -- loading ------------------------------------------------------------------


def test_split_selects_the_examples_and_the_experiment_records_it(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("splits")
    split = unique("train")
    created = create_dataset(api, name, rows(3), splits=[[split], [split], ["other"]])
    experiment(tmp_path, name)

    result = run(tmp_path, "--phoenix", phoenix_server.url, "--split", split, env=env())

    assert result.returncode == 0, result
    (recorded,) = experiments_of(api, created["dataset_id"])
    assert recorded["example_count"] == 2
    assert sorted(r["input"]["x"] for r in recorded_runs(api, recorded["id"])) == [0, 1]


def test_unknown_split_fails_the_experiment_saying_so(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("nosplit")
    create_dataset(api, name, rows(2))
    experiment(tmp_path, name)

    result = run(tmp_path, "--phoenix", phoenix_server.url, "--split", "no-such-split", env=env())

    assert result.returncode == 1, result
    assert f"dataset '{name}' (split no-such-split)" in result.stderr
    assert "Traceback" not in result.output


def test_dataset_version_pins_the_examples_run_and_recorded(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("versions")
    first = create_dataset(api, name, rows(2))
    latest = create_dataset(api, name, rows(3), action="update")
    assert latest["version_id"] != first["version_id"]
    experiment(tmp_path, name)

    result = run(
        tmp_path,
        "--phoenix",
        phoenix_server.url,
        "--dataset-version",
        first["version_id"],
        env=env(),
    )

    assert result.returncode == 0, result
    (recorded,) = experiments_of(api, first["dataset_id"])
    assert recorded["dataset_version_id"] == first["version_id"]
    assert sorted(r["input"]["x"] for r in recorded_runs(api, recorded["id"])) == [0, 1]


def test_missing_dataset_names_the_dataset_and_the_server(
    tmp_path: Path, phoenix_server: PhoenixServer, env: Env
) -> None:
    name = unique("absent")
    experiment(tmp_path, name)

    result = run(tmp_path, "--phoenix", phoenix_server.url, env=env())

    assert result.returncode == 1, result
    assert f"dataset '{name}' not found in Phoenix at {phoenix_server.url}" in result.stderr
    assert "evalwire upload" in result.stderr
    assert "Traceback" not in result.output


def test_missing_dataset_with_a_local_file_suggests_the_upload_that_fixes_it(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("local")
    write_experiment(tmp_path / "experiments", name)  # with its dataset.jsonl
    write(tmp_path / "evalwire.toml", f'[phoenix]\nurl = "{phoenix_server.url}"\n')

    missing = run(tmp_path, env=env())
    suggested = re.search(r"`(evalwire upload [^`]+)`", missing.stderr)
    assert missing.returncode == 1, missing
    assert suggested, missing
    assert "--no-phoenix" in missing.stderr

    uploaded = evalwire(*PLUGINS, *shlex.split(suggested.group(1))[1:], cwd=tmp_path, env=env())
    rerun = run(tmp_path, env=env())

    assert uploaded.returncode == 0, uploaded
    assert rerun.returncode == 0, rerun
    (recorded,) = experiments_of(api, dataset_id(api, name))
    assert sorted(r["input"]["x"] for r in recorded_runs(api, recorded["id"])) == [0, 1, 2]


def test_unreachable_server_is_one_line_and_exit_1(tmp_path: Path, env: Env) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    experiment(tmp_path, "nowhere")

    result = run(tmp_path, "--phoenix", url, env=env())

    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if "cannot reach Phoenix" in line]
    assert len(lines) == 1, result
    assert url in lines[0]
    assert "Traceback" not in result.output


# -- turning Phoenix on and off -----------------------------------------------


def test_phoenix_client_environment_variable_turns_phoenix_on(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("fromenv")
    created = create_dataset(api, name, rows(2))
    experiment(tmp_path, name)

    result = run(tmp_path, env=env(PHOENIX_COLLECTOR_ENDPOINT=f"{phoenix_server.url}/v1/traces"))

    assert result.returncode == 0, result
    assert len(experiments_of(api, created["dataset_id"])) == 1


def test_no_phoenix_runs_on_local_files_whatever_the_environment_says(
    tmp_path: Path, env: Env
) -> None:
    write_experiment(tmp_path / "experiments", "local")
    dead = f"http://127.0.0.1:{free_port()}"

    result = run(tmp_path, "--no-phoenix", env=env(PHOENIX_COLLECTOR_ENDPOINT=dead))

    assert result.returncode == 0, result


def test_split_without_phoenix_is_a_usage_error(tmp_path: Path, env: Env) -> None:
    write_experiment(tmp_path / "experiments", "local")

    result = run(tmp_path, "--split", "train", env=env())

    assert result.returncode == 2, result
    assert "--split" in result.stderr and "Phoenix is off" in result.stderr


# -- the API key --------------------------------------------------------------


def test_api_key_is_never_printed(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    present = unique("keyed")
    create_dataset(api, present, rows(2))
    experiment(tmp_path, present)
    experiment(tmp_path, unique("keyless"))  # not in Phoenix: an error message is printed

    served = run(tmp_path, "--phoenix", phoenix_server.url, env=env(PHOENIX_API_KEY=SECRET))
    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = run(tmp_path, "--phoenix", dead, env=env(PHOENIX_API_KEY=SECRET))

    assert served.returncode == 1, served  # the missing dataset
    assert "compare?experimentId=" in served.stdout
    assert unreachable.returncode == 1, unreachable
    for result in (served, unreachable):
        assert SECRET not in result.output


def test_api_key_goes_in_the_authorization_header_only(tmp_path: Path, env: Env) -> None:
    script = write(
        tmp_path / "script.py",
        """
        from evalwire.phoenix.client import Target, connect

        default = connect(Target("http://127.0.0.1:9", "test"))
        named = connect(Target("http://127.0.0.1:9", "test", api_key_env="TEAM_KEY"))
        print(default.http.headers["authorization"] == "Bearer sk-secret-123")
        print(named.http.headers["authorization"] == "Bearer team-key-456")
        print(default.redact("failed: Bearer sk-secret-123"))
        """,
    )

    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env(PHOENIX_API_KEY=SECRET, TEAM_KEY="team-key-456"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    header, named, redacted = proc.stdout.splitlines()
    assert (header, named) == ("True", "True")
    assert SECRET not in redacted and "***" in redacted


def test_api_key_env_naming_an_unset_variable_is_a_usage_error(
    tmp_path: Path, phoenix_server: PhoenixServer, env: Env
) -> None:
    write_experiment(tmp_path / "experiments", "local")
    write(tmp_path / "evalwire.toml", '[phoenix]\napi_key_env = "TEAM_KEY"\n')

    result = run(tmp_path, "--phoenix", phoenix_server.url, env=env())

    assert result.returncode == 2, result
    assert "TEAM_KEY" in result.stderr


# -- the test server itself ---------------------------------------------------


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_the_test_server_listens_on_loopback_only(phoenix_server: PhoenixServer) -> None:
    assert phoenix_server.pid is not None
    assert _listening(phoenix_server.pid) == {("127.0.0.1", phoenix_server.port)}


def _listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs process ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            if table == "tcp":
                host = socket.inet_ntoa(bytes.fromhex(address)[::-1])
            else:
                host = address  # any IPv6 listener is a failure; show it raw
            found.add((host, int(port, 16)))
    return found


def test_a_run_phoenix_already_holds_counts_as_posted(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    # Posting a successful run twice (an answer lost, the request tried again)
    # gets a 409 from Phoenix: the recorder takes the run it names and goes on.
    created = create_dataset(api, unique("twice"), rows(1))
    (example,) = api.get(f"/v1/datasets/{created['dataset_id']}/examples").json()["data"][
        "examples"
    ]
    script = write(
        tmp_path / "script.py",
        f"""
        import time
        from evalwire.config import Config
        from evalwire.models import (
            Dataset, Evaluation, Example, ExperimentResult, ExperimentSpec, Run,
        )
        from evalwire.phoenix.client import Phoenix, Target
        from evalwire.phoenix.loader import RemoteDataset
        from evalwire.phoenix.recorder import Recorder
        from evalwire.session import Experiment

        config = Config(settings={{"phoenix": {{"workers": 1}}}})  # one post after the other
        phoenix = Phoenix(Target({phoenix_server.url!r}, "test"), config)
        example = Example("ex0", {{"x": 0}}, {{"x": 0}})
        dataset = Dataset("twice", [example])
        phoenix.remember(dataset, RemoteDataset(
            {created["dataset_id"]!r}, "twice", {created["version_id"]!r}, (),
            {{"ex0": {example["node_id"]!r}}},
        ))
        result = ExperimentResult(id="r", name="twice", experiment_name="twice", dataset="twice")
        experiment = Experiment(ExperimentSpec("twice", None), config, result, dataset)
        recorder = Recorder(phoenix, config)
        recording = recorder.start(experiment)
        now = time.time()
        run = Run(example, 1, 0, None, now, now, evaluations=(Evaluation("ok", score=1.0),))
        recording.add(run)
        recording.add(run)
        print(recorder.finish())
        print(recording.runs_posted, recording.evaluations_posted, recording.error)
        print(recording.experiment_id)
        """,
    )

    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    *_, status, counts, experiment_id = proc.stdout.splitlines()
    assert (status, counts) == ("0", "2 2 None")
    (recorded,) = recorded_runs(api, experiment_id)
    assert [a["name"] for a in recorded["annotations"]] == ["ok"]


# -- runs Phoenix could not take ---------------------------------------------


def test_runs_phoenix_could_not_take_are_counted_and_exit_1(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    # The dataset (and with it the experiment) is deleted while the task
    # runs, so Phoenix refuses every run: the accounting, without an outage.
    name = unique("refused")
    created = create_dataset(api, name, rows(3))
    gate = tmp_path / "go"
    experiment(
        tmp_path,
        name,
        task=f"""
        import pathlib, time

        def task(input):
            while not pathlib.Path({str(gate)!r}).exists():
                time.sleep(0.05)
            return input["x"]
        """,
    )
    write(tmp_path / "evalwire.toml", "[phoenix]\nattempts = 2\nbackoff = 0.1\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evalwire",
            *PLUGINS,
            "run",
            "-e",
            "experiments",
            "--phoenix",
            phoenix_server.url,
        ],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not experiments_of(api, created["dataset_id"]):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        api.delete(f"/v1/datasets/{created['dataset_id']}").raise_for_status()
        gate.touch()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == 1, stdout + stderr
    assert re.search(rf"phoenix: {name}: 3 of 3 run\(s\).* could not be posted: ", stderr)
    assert phoenix_server.url in stderr
    assert "Traceback" not in stdout + stderr
