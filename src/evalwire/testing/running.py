"""Running evalwire for a test: in this process, or as a user runs it, in a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from evalwire.config import Config, build_config
from evalwire.errors import EvalwireError, UsageError
from evalwire.models import ExperimentResult
from evalwire.plugins import Plugins
from evalwire.session import Session
from evalwire.testing.documents import results_from_document
from evalwire.testing.outcome import Outcome
from evalwire.testing.project import EvalwireProject, locate

__all__ = ["TIMEOUT", "run_in_process", "run_subprocess"]

#: Seconds a subprocess run may take before the test fails.
TIMEOUT = 60.0

#: Environment for subprocess runs: output that does not depend on who runs the tests.
_QUIET_ENVIRONMENT = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


# -- running in-process ------------------------------------------------------------------


def run_in_process(
    target: EvalwireProject | str | os.PathLike[str],
    *names: str,
    plugins: Iterable[object | tuple[str | None, object]] = (),
    plugin_args: Sequence[str] = ("no:console",),
    options: Mapping[str, Any] | None = None,
    config_path: str | os.PathLike[str] | None = None,
    autoload: bool | None = None,
    **settings: Any,
) -> Outcome:
    """Run evalwire on a project (or an experiments folder) in this process.

    ``names`` select experiments, as ``--name`` does. ``plugins`` are plugin
    objects (modules, instances) to register, bare or as ``(name, plugin)``;
    ``plugin_args`` are ``-p`` values (the console reporter is blocked by
    default; pass ``()`` to keep it). ``settings`` are evalwire's settings
    (``retries=0``, ``concurrency=2``, ``timeout=5``...) over the project's
    ``evalwire.toml``; ``options`` are plugin options, as
    ``config.getoption`` reads them. Runs are kept on the results.

    A usage error (bad setting, unknown name, broken plugin) is exit status 2
    with its message in ``error`` and ``stderr``, as on the command line;
    stdout and stderr written during the run are captured in the outcome.
    """
    experiments_dir, cwd = locate(target)
    extra = [p if isinstance(p, tuple) else (None, p) for p in plugins]
    command = f"evalwire (in-process) run -e {experiments_dir}" + "".join(
        f" --name {n}" for n in names
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    config: Config | None = None
    results: list[ExperimentResult] = []
    error: str | None = None
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                config = build_config(
                    {
                        "experiments_dir": str(experiments_dir),
                        "names": tuple(names) or None,
                        **settings,
                        "keep_runs": True,
                    },
                    config_path=None if config_path is None else os.fspath(config_path),
                    cwd=cwd,
                    options=options,
                )
                loaded = _load_plugins(plugin_args, extra, autoload)
                session = Session(config, loaded)
                results = session.run()
                status = session.exitstatus
            except EvalwireError as exc:
                # What the command line would print, and its exit status.
                error = str(exc)
                sys.stderr.write(f"evalwire: error: {exc}\n")
                status = 2 if isinstance(exc, UsageError) else 1
    except BaseException:
        # A bug, not an outcome: let it fail the test, with what the run printed.
        sys.stdout.write(stdout.getvalue())
        sys.stderr.write(stderr.getvalue())
        raise
    return Outcome(
        exit_code=status,
        results=results,
        stdout=stdout.getvalue(),
        stderr=stderr.getvalue(),
        error=error,
        command=command,
        duration=time.monotonic() - started,
        config=config,
    )


def _load_plugins(
    plugin_args: Sequence[str], extra: list[tuple[str | None, object]], autoload: bool | None
) -> Plugins:
    """The plugins of a session, plus ``extra`` (one already loaded is not registered twice)."""
    return Plugins.load(plugin_args, extra=extra, autoload=autoload)


# -- running as a subprocess --------------------------------------------------------------


def run_subprocess(
    target: EvalwireProject | str | os.PathLike[str],
    *cli_args: str | os.PathLike[str],
    env: Mapping[str, str | None] | None = None,
    pythonpath: Iterable[str | os.PathLike[str]] = (),
    timeout: float = TIMEOUT,
    cwd: str | os.PathLike[str] | None = None,
) -> Outcome:
    """Run ``python -m evalwire run -e DIR CLI_ARGS`` and read back what it did.

    The command runs in the project folder (or beside the experiments
    folder). ``--json`` is added to write results to a temporary file, which
    becomes ``document`` and ``results`` (unless ``cli_args`` give their own
    ``--json PATH``, which is read instead, or block the json reporter).
    The environment is this process's, plus ``env`` (a ``None`` value removes
    a variable), plus ``pythonpath`` put in front of ``PYTHONPATH``: a plugin
    module the test wrote must be on it to be loaded with ``-p``.
    """
    experiments_dir, default_cwd = locate(target)
    args = [os.fspath(a) for a in cli_args]
    with tempfile.TemporaryDirectory(prefix="evalwire-testing-") as scratch:
        json_path = _json_path(args)
        if json_path is None and not _json_blocked(args):
            json_path = str(Path(scratch) / "results.json")
            args += ["--json", json_path]
        argv = [sys.executable, "-m", "evalwire", "run", "-e", str(experiments_dir), *args]
        command = "evalwire run -e " + " ".join([str(experiments_dir), *args])
        started = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                cwd=os.fspath(cwd) if cwd is not None else default_cwd,
                env=_environment(env, pythonpath),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"{command} did not finish in {timeout:g}s\n"
                f"--- stdout\n{_text(exc.stdout)}\n--- stderr\n{_text(exc.stderr)}",
                pytrace=False,
            )
        duration = time.monotonic() - started
        document = None
        if json_path is not None:
            path = Path(default_cwd if cwd is None else cwd, json_path)
            if path.is_file() and path.stat().st_size:
                document = json.loads(path.read_text(encoding="utf-8"))
    error = None
    if proc.returncode == 2:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        error = lines[-1].removeprefix("evalwire: error: ") if lines else None
    return Outcome(
        exit_code=proc.returncode,
        results=results_from_document(document),
        stdout=proc.stdout,
        stderr=proc.stderr,
        document=document,
        error=error,
        command=command,
        duration=duration,
    )


def _json_path(args: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--json" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--json="):
            return arg.split("=", 1)[1]
    return None


def _json_blocked(args: Sequence[str]) -> bool:
    return any(
        (arg in ("-p", "--plugin") and i + 1 < len(args) and args[i + 1] == "no:json")
        or arg in ("-pno:json", "--plugin=no:json")
        for i, arg in enumerate(args)
    )


def _environment(
    variables: Mapping[str, str | None] | None, pythonpath: Iterable[str | os.PathLike[str]]
) -> dict[str, str]:
    env = {**os.environ, **_QUIET_ENVIRONMENT}
    for key, value in (variables or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    paths = [os.fspath(p) for p in pythonpath]
    if paths:
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
