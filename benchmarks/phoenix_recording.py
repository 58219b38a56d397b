"""Phoenix recording: what posting every run and evaluation to Phoenix costs.

Only when ``evalwire plugins`` lists ``phoenix`` (the recorder); otherwise the
scenario reports "not measured: needs the phoenix recorder".

A Phoenix server is started on loopback (``tests/phoenix_server.py``, with
its own SQLite database in a temporary folder, as the test suite does), a
dataset of ``examples`` examples is uploaded, and ``evalwire run --phoenix
URL`` runs a no-op async task with one evaluator on it; the peer, measured in
the same run, is the same ``evalwire run`` on the same examples from a local
JSONL file (``--no-phoenix``). Both are CLI subprocesses, start-up included,
with ``phoenix`` a client-only namespace (as for users, who do not have the
server installed: with it, ``import phoenix.client`` imports the whole server).
Reported: wall time of each, the ratio, runs recorded per second, and a check
that Phoenix holds every run and evaluation.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ASYNC_NOOP,
    REPO,
    Project,
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


@scenario
def run(*, examples: int = 1000, runs: int = 3, server: bool = True) -> dict[str, Any]:
    from evalwire.plugins import Plugins

    listed = Plugins.load().has("phoenix")
    params = {"examples": examples, "runs": runs}
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
    return _measure(examples, runs)


def _measure(examples: int, runs: int) -> dict[str, Any]:
    store = store_setup()
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {"phoenix_listed": True}
    notes = [
        f"{store.label}; `evalwire run` subprocesses, start-up included; no-op async task "
        "+ 1 evaluator; server on loopback, its own SQLite database"
    ]
    dataset = f"bench_{uuid.uuid4().hex[:8]}"
    with Project(NAME) as project, _Server(project.root / "phoenix") as phoenix:
        folder = project.experiments / dataset
        folder.mkdir()
        (folder / "task.py").write_text(ASYNC_NOOP, encoding="utf-8")
        (folder / "correct.py").write_text(
            "def correct(output, expected):\n    return output == expected['a']\n", encoding="utf-8"
        )
        local = project.root / "local_experiments"
        (local / dataset).mkdir(parents=True)
        for name in ("task.py", "correct.py"):
            (local / dataset / name).write_text((folder / name).read_text(), encoding="utf-8")
        write_jsonl(local / dataset / "dataset.jsonl", examples)
        dataset_id = phoenix.upload(dataset, examples)

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
        local_cmd = evalwire_command(["run", "-e", str(local), "--no-phoenix", *store_args])
        costs: dict[str, list[tuple[float, float]]] = {"phoenix": [], "local": []}
        for _ in range(runs):  # interleaved: a busy spell lands on both
            project.reset_store()
            costs["phoenix"].append(cost_of(remote_cmd, project.root, env))
            project.reset_store()
            costs["local"].append(cost_of(local_cmd, project.root, env))
        recorded = phoenix.recorded(dataset_id)
        checks["experiments"] = len(recorded)
        checks["runs_per_experiment"] = sorted({r["runs"] for r in recorded})
        checks["evaluations_per_experiment"] = sorted({r["evaluations"] for r in recorded})

    wall = median([w for w, _ in costs["phoenix"]])
    local_wall = median([w for w, _ in costs["local"]])
    rows.append(
        row(
            f"evalwire run --phoenix, {examples:,} ex (start-up included)",
            wall,
            "s",
            peer=f"local files {local_wall:.3f} s",
            ratio=wall / local_wall,
            runs=[w for w, _ in costs["phoenix"]],
            note=f"CPU {median([c for _, c in costs['phoenix']]):.3f} s",
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
        {"examples": examples, "runs": runs, "store": store.mode},
        rows,
        checks,
        notes,
    )


class _Server:
    """A Phoenix server this scenario owns: started on a free loopback port, stopped by pid."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_only = workdir / "client-only"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Server:
        # A client-only install's `phoenix`: a bare namespace (no server import).
        package = self.client_only / "phoenix"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(
            '__path__ = __import__("pkgutil").extend_path(__path__, __name__)\n', encoding="utf-8"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
        env.update(
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.port),
            PHOENIX_WORKING_DIR=str(self.workdir),
            PHOENIX_SQL_DATABASE_URL=f"sqlite:///{self.workdir / 'phoenix.db'}",
            PHOENIX_TELEMETRY_ENABLED="false",
            PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        )
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCHER)],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self._wait()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Phoenix server exited with {self.process.returncode}; "
                    f"see {self.workdir / 'server.log'}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Phoenix server did not answer within {START_TIMEOUT:g} s")

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)

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
                    }
                )
        return out
