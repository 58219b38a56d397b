"""Phoenix recording: evalwire against Phoenix's own runner, recording into one server.

Only when ``evalwire plugins`` lists ``phoenix`` (the recorder); otherwise the
scenario reports "not measured: needs the phoenix recorder".

A Phoenix server is started on loopback (``tests/phoenix_server.py``, with
its own SQLite database in a temporary folder, as the test suite does) and a
dataset of ``examples`` examples is uploaded twice, one copy per side, so each
side's experiments can be counted. The work (issue 4, item 8): a task that
awaits ``asyncio.sleep(sleep)``, one evaluator, ``concurrency`` tasks at once.

* evalwire: ``evalwire run --phoenix URL`` (``task_concurrency = concurrency``),
  a CLI subprocess, start-up included, with ``phoenix`` a client-only namespace
  (as for users, who do not have the server installed: with it, ``import
  phoenix.client`` imports the whole server), task spans exported as Phoenix's
  runner exports its own; and again with ``--no-traces``, for what spans cost;
* Phoenix: ``AsyncClient(base_url=URL).experiments.run_experiment(dataset,
  task, evaluators=[correct], concurrency=concurrency)`` (``async_run_experiment``),
  fetching the dataset included, in a child process that imported the client
  before it is timed (``python -m benchmarks.phoenix_peers --record``);
* and, for what recording costs, the same ``evalwire run`` on the same examples
  from a local JSONL file (``--no-phoenix``).

The three are interleaved run by run (a busy spell lands on all of them).
Reported: wall time of each, Phoenix's time over evalwire's (target >= 10 x),
runs recorded per second, and a check through Phoenix's REST API that each
side's experiments hold every run and evaluation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON,
    REPO,
    Project,
    async_sleep_task,
    child_env,
    cost_of,
    evalwire_command,
    median,
    result,
    row,
    scenario,
    store_setup,
    write_jsonl,
)

NAME = "phoenix_recording"
LAUNCHER = REPO / "tests" / "phoenix_server.py"
START_TIMEOUT = 180.0
#: Phoenix's run time over evalwire's, end to end (issue 4, item 8).
TARGET = 10.0
CORRECT = "def correct(output, expected):\n    return output == expected['a']\n"


@scenario
def run(
    *,
    examples: int = 1000,
    runs: int = 3,
    sleep: float = 0.05,
    concurrency: int = 10,
    server: bool = True,
    peer: bool = True,
) -> dict[str, Any]:
    from evalwire.plugins import Plugins

    listed = Plugins.load().has("phoenix")
    params = {"examples": examples, "runs": runs, "sleep": sleep, "concurrency": concurrency}
    if not listed or not server or not LAUNCHER.is_file():
        why = (
            "not measured: needs the phoenix recorder (`evalwire plugins` does not list phoenix)"
            if not listed
            else "not measured: no Phoenix server (turned off, or tests/phoenix_server.py missing)"
        )
        return result(
            NAME,
            "Phoenix recording",
            params,
            [row("phoenix recording", None, "", note=why)],
            {"phoenix_listed": listed},
            [why],
        )
    return _measure(examples, runs, sleep, concurrency, peer)


def _measure(
    examples: int, runs: int, sleep: float, concurrency: int, with_peer: bool
) -> dict[str, Any]:
    store = store_setup()
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {"phoenix_listed": True}
    notes = [
        f"{store.label}; `evalwire run` subprocesses, start-up included; task "
        f"asyncio.sleep({sleep}) + 1 evaluator, {concurrency} at once (ideal task time "
        f"{examples * sleep / concurrency:.2f} s); server on loopback, its own SQLite database"
    ]
    dataset = f"bench_{uuid.uuid4().hex[:8]}"
    with Project(NAME) as project, _Server(project.root / "phoenix") as phoenix:
        (project.root / "evalwire.toml").write_text(
            f"task_concurrency = {concurrency}\n", encoding="utf-8"
        )
        folder = project.experiments / dataset
        folder.mkdir()
        (folder / "task.py").write_text(async_sleep_task(sleep), encoding="utf-8")
        (folder / "correct.py").write_text(CORRECT, encoding="utf-8")
        local = project.root / "local_experiments"
        (local / dataset).mkdir(parents=True)
        for name in ("task.py", "correct.py"):
            (local / dataset / name).write_text((folder / name).read_text(), encoding="utf-8")
        write_jsonl(local / dataset / "dataset.jsonl", examples)
        dataset_id = phoenix.upload(dataset, examples)
        peer_dataset_id = phoenix.upload(f"{dataset}_phoenix", examples)

        env = {
            **child_env(),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(phoenix.client_only), child_env().get("PYTHONPATH")])
            ),
        }
        store_args = [a for arg in store.args(on=True) for a in ("-p", arg)]
        remote_cmd = evalwire_command(
            ["run", "-e", str(project.experiments), "--phoenix", phoenix.url, *store_args]
        )
        untraced_cmd = evalwire_command(
            ["run", "-e", str(project.experiments), "--phoenix", phoenix.url, "--no-traces"]
            + store_args
        )
        local_cmd = evalwire_command(["run", "-e", str(local), "--no-phoenix", *store_args])
        costs: dict[str, list[tuple[float, float]]] = {
            "phoenix": [],
            "untraced": [],
            "local": [],
            "peer": [],
        }
        peer = _Peer(phoenix.url, peer_dataset_id, concurrency, sleep) if with_peer else None
        try:
            if peer is not None and peer.error:
                notes.append(f"Phoenix's runner not measured: {peer.error}")
                peer = None
            elif peer is not None:
                notes.append(
                    "Phoenix's runner ran in a child process (importing phoenix.client took "
                    f"{peer.import_s:.1f} s there, not timed)"
                )
            for _ in range(runs):  # interleaved: a busy spell lands on all three
                project.reset_store()
                costs["phoenix"].append(cost_of(remote_cmd, project.root, env))
                project.reset_store()
                costs["untraced"].append(cost_of(untraced_cmd, project.root, env))
                project.reset_store()
                costs["local"].append(cost_of(local_cmd, project.root, env))
                if peer is not None:
                    out = peer.once()
                    if "error" in out:
                        notes.append(f"Phoenix's runner failed: {out['error']}")
                        peer = None
                        continue
                    costs["peer"].append((out["wall"], out["cpu"]))
                    checks["phoenix_runner"] = {
                        k: out[k]
                        for k in ("task_runs", "errors", "evaluations", "evaluation_errors")
                    }
        finally:
            if peer is not None:
                peer.close()
        recorded = phoenix.recorded(dataset_id)
        checks["experiments"] = len(recorded)
        checks["runs_per_experiment"] = sorted({r["runs"] for r in recorded})
        checks["evaluations_per_experiment"] = sorted({r["evaluations"] for r in recorded})
        # Half of evalwire's experiments ran with --no-traces: [0, examples] when spans work.
        checks["runs_with_a_trace_per_experiment"] = sorted({r["traced"] for r in recorded})
        if costs["peer"]:
            theirs = phoenix.recorded(peer_dataset_id)
            checks["phoenix_runner_experiments"] = len(theirs)
            checks["phoenix_runner_runs_per_experiment"] = sorted({r["runs"] for r in theirs})
            checks["phoenix_runner_evaluations_per_experiment"] = sorted(
                {r["evaluations"] for r in theirs}
            )
            checks["phoenix_runner_runs_with_a_trace"] = sorted({r["traced"] for r in theirs})

    wall = median([w for w, _ in costs["phoenix"]])
    local_wall = median([w for w, _ in costs["local"]])
    peer_text, peer_ratio = "", None
    if costs["peer"]:
        peer_wall = median([w for w, _ in costs["peer"]])
        peer_text, peer_ratio = f"Phoenix async_run_experiment {peer_wall:.3f} s", wall / peer_wall
    rows.append(
        row(
            f"evalwire run --phoenix, {examples:,} ex @ {concurrency} (start-up included)",
            wall,
            "s",
            peer=peer_text,
            ratio=peer_ratio,
            runs=[w for w, _ in costs["phoenix"]],
            note=f"CPU {median([c for _, c in costs['phoenix']]):.3f} s",
        )
    )
    if costs["peer"]:
        rows.append(
            row(
                f"Phoenix AsyncClient.experiments.run_experiment, {examples:,} ex @ {concurrency}",
                peer_wall,
                "s",
                runs=[w for w, _ in costs["peer"]],
                note=f"CPU {median([c for _, c in costs['peer']]):.3f} s; import not timed",
            )
        )
        rows.append(
            row(
                "evalwire speed-up over Phoenix's runner (end to end)",
                peer_wall / wall,
                "x",
                target=f">= {TARGET:g} x",
                ok=peer_wall / wall >= TARGET,
            )
        )
    rows.append(
        row(
            f"evalwire run --phoenix --no-traces, {examples:,} ex @ {concurrency}",
            median([w for w, _ in costs["untraced"]]),
            "s",
            runs=[w for w, _ in costs["untraced"]],
            note=f"CPU {median([c for _, c in costs['untraced']]):.3f} s",
        )
    )
    rows.append(
        row(
            f"evalwire run --no-phoenix (local JSONL), {examples:,} ex",
            local_wall,
            "s",
            runs=[w for w, _ in costs["local"]],
            note=f"CPU {median([c for _, c in costs['local']]):.3f} s",
        )
    )
    rows.append(row("runs recorded in Phoenix per second (whole command)", examples / wall, "ex/s"))
    rows.append(
        row(
            "Phoenix cost per example (beyond local files)",
            1e3 * (wall - local_wall) / examples,
            "ms",
        )
    )
    return result(
        NAME,
        "Phoenix recording",
        {
            "examples": examples,
            "runs": runs,
            "sleep": sleep,
            "concurrency": concurrency,
            "store": store.mode,
        },
        rows,
        checks,
        notes,
    )


class _Peer:
    """``python -m benchmarks.phoenix_peers --record``: imports the client once, then runs
    Phoenix's ``run_experiment`` into the server each time it is asked (see that module)."""

    def __init__(self, url: str, dataset_id: str, concurrency: int, sleep: float) -> None:
        cmd = [
            PYTHON,
            "-m",
            "benchmarks.phoenix_peers",
            "--record",
            url,
            "--dataset-id",
            dataset_id,
            "--concurrency",
            str(concurrency),
            "--sleep",
            repr(sleep),
        ]
        env = child_env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        first = self._read()
        self.error: str | None = first.get("error")
        self.import_s: float = first.get("import_s", 0.0)

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            return {"error": f"peer process exited {self.process.wait()}"}
        out: dict[str, Any] = json.loads(line)
        return out

    def once(self) -> dict[str, Any]:
        """One timed ``run_experiment`` (a new Phoenix experiment on the peer's dataset)."""
        assert self.process.stdin is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)


def _phoenix_fixture() -> Any:
    """tests/phoenix_fixture.py: one implementation of starting a loopback server, gRPC off."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import phoenix_fixture

    return phoenix_fixture


class _Server:
    """A Phoenix server this scenario owns, started and stopped by the test suite's launcher."""

    def __init__(self, workdir: Path) -> None:
        fixture = _phoenix_fixture()
        workdir.mkdir(parents=True)
        self.server = fixture.PhoenixServer(fixture.free_port(), workdir)
        self.url = self.server.url
        self.client_only = fixture.write_client_only(workdir / "client-only")

    def __enter__(self) -> _Server:
        self.server.start(START_TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def upload(self, name: str, examples: int) -> str:
        import httpx

        payload = {
            "action": "create",
            "name": name,
            "inputs": [{"q": i} for i in range(examples)],
            "outputs": [{"a": i} for i in range(examples)],
            "metadata": [{} for _ in range(examples)],
            "example_ids": [f"ex{i}" for i in range(examples)],
        }
        with httpx.Client(base_url=self.url, timeout=120) as api:
            response = api.post("/v1/datasets/upload", params={"sync": "true"}, json=payload)
            response.raise_for_status()
            return str(response.json()["data"]["dataset_id"])

    def recorded(self, dataset_id: str) -> list[dict[str, int]]:
        """Every experiment on the dataset: how many runs and evaluations Phoenix holds."""
        import httpx

        out = []
        with httpx.Client(base_url=self.url, timeout=120) as api:
            response = api.get(f"/v1/datasets/{dataset_id}/experiments")
            response.raise_for_status()
            for experiment in response.json()["data"]:
                runs = api.get(f"/v1/experiments/{experiment['id']}/json")
                runs.raise_for_status()
                data = runs.json()
                out.append(
                    {
                        "runs": len(data),
                        "evaluations": sum(len(r.get("annotations") or ()) for r in data),
                        "traced": sum(1 for r in data if r.get("trace_id")),
                    }
                )
        return out
