"""A real Phoenix server for the tests: one per test session, on loopback only.

``phoenix_server`` (session-scoped) starts ``tests/phoenix_server.py`` in a
subprocess on a free port, with its SQLite database and working folder in a
temporary folder, and waits for ``GET /healthz``. It yields a
:class:`PhoenixServer`: ``url`` to point evalwire at, ``stop()`` and
``start()`` to take it down and bring it back on the same port and database
(an outage), ``api()`` for an ``httpx.Client`` on its REST API.

The server gets a clean environment: no ``PHOENIX_*`` variable of whoever
runs the tests (an API key, auth, a collector) reaches it.

``phoenix_client_only`` is a ``PYTHONPATH`` entry for ``evalwire``
subprocesses under which ``phoenix`` is what it is when only
``arize-phoenix-client`` (evalwire's dependency) is installed: a bare
namespace holding ``phoenix.client``. The test environment also has the
server installed, whose ``phoenix/__init__.py`` imports the whole server (about
ten seconds) on ``import phoenix.client``; users of evalwire never pay that,
and neither should every ``evalwire run`` a test makes.

``phoenix_env`` builds the environment for those subprocesses (that entry on
``PYTHONPATH``, no ``PHOENIX_*`` variable but the ones a test gives),
``phoenix_api`` is an ``httpx.Client`` on the server, and the functions at the
end make datasets and read back what Phoenix holds through its own REST API.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

LAUNCHER = Path(__file__).with_name("phoenix_server.py")

#: Seconds the server may take to answer /healthz (it migrates a new database first).
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**variables: str) -> dict[str, str]:
    """``os.environ`` without any Phoenix or OpenTelemetry setting, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
    env.update(variables)
    return env


@dataclass
class PhoenixServer:
    """A Phoenix server process this test session owns."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server (again, on the same port and database) and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return
        env = clean_environment(
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.port),
            PHOENIX_WORKING_DIR=str(self.workdir),
            PHOENIX_SQL_DATABASE_URL=f"sqlite:///{self.workdir / 'phoenix.db'}",
            PHOENIX_TELEMETRY_ENABLED="false",
            PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
            PYTHONDONTWRITEBYTECODE="1",
        )
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, str(LAUNCHER)],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Phoenix server exited with status {self.process.returncode} "
                    f"before answering; its log ends:\n{self._log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"Phoenix server did not answer {self.url}/healthz within {timeout:g} s; "
            f"its log ends:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); the database stays for ``start()``."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def api(self, **kwargs: Any) -> Any:
        """An ``httpx.Client`` on the server's REST API (close it, or use it in ``with``)."""
        import httpx

        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def write_client_only(folder: Path) -> Path:
    """Make ``folder`` a PYTHONPATH entry where ``phoenix`` is only a namespace package."""
    package = folder / "phoenix"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "# Only the namespace: arize-phoenix-client ships no phoenix/__init__.py.\n"
        '__path__ = __import__("pkgutil").extend_path(__path__, __name__)\n',
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="session")
def phoenix_client_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PYTHONPATH entry making ``phoenix`` a bare namespace, as a client-only install has it."""
    return write_client_only(tmp_path_factory.mktemp("client-only"))


@pytest.fixture(scope="session")
def phoenix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoenixServer]:
    """A Phoenix server for the whole test session (started once, ~10 s)."""
    server = PhoenixServer(free_port(), tmp_path_factory.mktemp("phoenix"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def phoenix_env(phoenix_client_only: Path) -> Callable[..., dict[str, str]]:
    """``phoenix_env(**variables)``: the environment for an ``evalwire`` subprocess.

    No ``PHOENIX_*`` or ``OTEL_*`` variable of whoever runs the tests, only
    ``variables``; ``phoenix`` is a client-only install's namespace.
    """
    from clihelpers import environment

    def make(**variables: str) -> dict[str, str]:
        base = environment(pythonpath=[phoenix_client_only])
        base = {k: v for k, v in base.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
        base.update(variables)
        return base

    return make


@pytest.fixture
def phoenix_api(phoenix_server: PhoenixServer) -> Iterator[Any]:
    """An ``httpx.Client`` on the session's Phoenix server."""
    with phoenix_server.api() as client:
        yield client


# -- Phoenix's REST API, for making datasets and reading back -------------------


def unique(stem: str) -> str:
    """``stem`` with a random suffix: every test's datasets are its own on the shared server."""
    return f"{stem}_{uuid.uuid4().hex[:8]}"


def create_dataset(
    api: Any,
    name: str,
    examples: Sequence[dict[str, Any]],
    splits: Sequence[Sequence[str]] | None = None,
    action: str = "create",
) -> dict[str, Any]:
    """Make (or, with ``action="update"``, replace) a dataset; returns its ids and counts."""
    payload: dict[str, Any] = {
        "action": action,
        "name": name,
        "inputs": [e["input"] for e in examples],
        "outputs": [e["expected"] for e in examples],
        "metadata": [e.get("metadata", {}) for e in examples],
        "example_ids": [e["id"] for e in examples],
    }
    if splits is not None:
        payload["splits"] = [list(s) for s in splits]
    response = api.post("/v1/datasets/upload", params={"sync": "true"}, json=payload)
    response.raise_for_status()
    data: dict[str, Any] = response.json()["data"]
    return data


def find_dataset(api: Any, name: str) -> dict[str, Any] | None:
    """The dataset named ``name`` (id, example_count, ...), or ``None``."""
    response = api.get("/v1/datasets", params={"name": name})
    response.raise_for_status()
    found = response.json()["data"]
    return found[0] if found else None


def dataset_examples(
    api: Any, dataset_id: str, *, version_id: str | None = None, split: str | None = None
) -> list[dict[str, Any]]:
    """A dataset version's examples (``id``, ``input``, ``output``, ``metadata``)."""
    params = {k: v for k, v in (("version_id", version_id), ("split", split)) if v}
    response = api.get(f"/v1/datasets/{dataset_id}/examples", params=params)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["data"]["examples"]
    return found


def dataset_versions(api: Any, dataset_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/datasets/{dataset_id}/versions")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["data"]
    return found


def experiments_of(api: Any, dataset_id: str) -> list[dict[str, Any]]:
    """Every experiment on a dataset."""
    response = api.get(f"/v1/datasets/{dataset_id}/experiments")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["data"]
    return found


def recorded_runs(api: Any, experiment_id: str) -> list[dict[str, Any]]:
    """Every run of an experiment, with its input and its evaluations (``annotations``)."""
    response = api.get(f"/v1/experiments/{experiment_id}/json")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found
