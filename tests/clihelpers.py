"""Helpers for the end-to-end tests: write experiments into a folder, run ``evalwire``.

A plain module (not a conftest) so the tests that use it say so with an import.
Every ``evalwire`` call is a real subprocess (``python -m evalwire``) in a
clean environment: plugin autoloading on, no tracing, no colour, a wide
terminal, so output does not depend on who runs the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Seconds any one ``evalwire`` call may take before the test fails.
TIMEOUT = 60.0

#: Environment variables that would change what evalwire does; never inherited.
_EVALWIRE_VARIABLES = ("EVALWIRE_DISABLE_PLUGIN_AUTOLOAD", "EVALWIRE_TRACE_PLUGINS")

ECHO_TASK = """
def task(input):
    return input["x"]
"""

EXACT_MATCH = """
def exact_match(output, expected):
    return output == expected["x"]
"""


@dataclass(frozen=True)
class Result:
    """What one ``evalwire`` call did."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    @property
    def output(self) -> str:
        """stdout and stderr together, for messages that may go to either."""
        return self.stdout + self.stderr

    @property
    def transcript(self) -> str:
        """The command, its exit status and everything it printed: an assertion message.

        (pytest shortens an assertion message that is not a string.)
        """
        return (
            f"evalwire {' '.join(self.args)} -> exit {self.returncode} "
            f"in {self.duration:.2f}s\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def environment(
    pythonpath: Iterable[str | os.PathLike[str]] = (), **variables: str
) -> dict[str, str]:
    """The environment for an ``evalwire`` subprocess, plus ``variables``."""
    # A developer's own Phoenix or OpenTelemetry settings must not switch tests to a server.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _EVALWIRE_VARIABLES and not k.startswith(("PHOENIX_", "OTEL_"))
    }
    env.update(NO_COLOR="1", COLUMNS="200", TERM="dumb", PYTHONDONTWRITEBYTECODE="1")
    paths = [str(p) for p in pythonpath]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(variables)
    return env


def evalwire(
    *args: str | os.PathLike[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Result:
    """Run ``python -m evalwire ARGS`` in ``cwd`` and return what it did."""
    argv = tuple(str(a) for a in args)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "evalwire", *argv],
        cwd=cwd,
        env=dict(env) if env is not None else environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def plugin_infos(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """``evalwire ARGS plugins --json``: every registered plugin's entry, by name."""
    result = evalwire(*args, "plugins", "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.transcript
    return {info["name"]: info for info in json.loads(result.stdout)}


def rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` dataset rows whose input ``x`` is also the expected ``x``."""
    return [
        {"id": f"ex{i}", "input": {"x": i}, "expected": {"x": i}}
        for i in range(start, start + count)
    ]


def write_experiment(
    experiments: Path,
    name: str,
    task: str = ECHO_TASK,
    evaluators: Mapping[str, str] | None = None,
    dataset: Sequence[Mapping[str, Any]] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write one experiment folder: ``task.py``, evaluator files, ``dataset.jsonl``.

    ``evaluators`` maps a file stem to its source (default: ``exact_match``);
    ``dataset`` defaults to three rows; ``files`` are any other files to write.
    Sources are dedented, so tests can indent them with the code around them.
    """
    folder = experiments / name
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "task.py", task)
    if evaluators is None:
        evaluators = {"exact_match": EXACT_MATCH}
    for stem, source in evaluators.items():
        write(folder / f"{stem}.py", source)
    write_jsonl(folder / "dataset.jsonl", rows(3) if dataset is None else dataset)
    for relative, source in (files or {}).items():
        write(folder / relative, source)
    return folder


def write(path: Path, source: str) -> Path:
    """Write dedented ``source`` to ``path`` (creating its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def evalwire_json(
    *args: str | os.PathLike[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> tuple[Result, Any]:
    """``evalwire ARGS --json PATH`` in ``cwd``, and the JSON document it wrote.

    ``--json`` is an option of ``run``, so ``args`` must end with ``run``'s own.
    """
    path = cwd / "results.json"
    path.unlink(missing_ok=True)
    result = evalwire(*args, "--json", path, cwd=cwd, env=env, timeout=timeout)
    assert path.is_file(), f"--json wrote no file\n{result.transcript}"
    return result, read_json(path)


def experiment_results(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every experiment in a ``--json`` document, in the order they were reported."""
    experiments: list[dict[str, Any]] = document["experiments"]
    return experiments


def runs_of(document: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The runs of experiment ``name`` in a ``--json`` document."""
    [experiment] = [e for e in experiment_results(document) if e["name"] == name]
    runs: list[dict[str, Any]] = experiment["runs"]
    return runs


#: Task-file source defining ``die_once_recorded(runs)``: wait until ``runs`` runs
#: of a running record are in the project's store, then kill this process as
#: ``kill -9`` would, so the record is left interrupted. For a task to call.
DIE_ONCE_RECORDED = """
import os
import signal
import sqlite3
import time
from pathlib import Path

def die_once_recorded(runs):
    store = Path(__file__).resolve().parents[2] / ".evalwire" / "evalwire.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            (recorded,) = conn.execute(
                "SELECT count(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                "WHERE e.status = 'running'"
            ).fetchone()
        finally:
            conn.close()
        if recorded >= runs:
            break
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGKILL)
"""
