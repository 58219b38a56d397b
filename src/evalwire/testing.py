"""A pytest plugin for evalwire plugin authors: build a project, run evalwire, check scores.

Opt in with ``-p evalwire.testing`` or ``pytest_plugins = ["evalwire.testing"]``;
nothing here is active otherwise. It offers three fixtures::

    EXACT = '''
        def exact(output, expected):
            return output == expected["x"]
    '''

    def test_my_adapter_scores(evalwire_project, run_evalwire):
        evalwire_project.experiment(
            "echo",
            task=MY_TASK,
            evaluators={"exact": EXACT},
            rows=[{"input": {"x": 1}, "expected": {"x": 1}}],
        )
        outcome = run_evalwire(evalwire_project, plugins=[my_plugin], retries=0)
        outcome.assert_passed()
        outcome.assert_score("echo", "exact", 1.0)

``evalwire_project``
    An :class:`EvalwireProject` over ``tmp_path``: experiment folders,
    datasets and ``evalwire.toml``, written from source strings.
``run_evalwire``
    :func:`run_in_process`: a session in this process, with plugin objects
    registered directly; the :class:`Outcome` holds every result and run.
``run_evalwire_subprocess``
    :func:`run_subprocess`: ``python -m evalwire run`` as a user runs it, for
    entry points, options and exit codes; its results come back through
    ``--json``, so the :class:`Outcome` is the same shape.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evalwire.config import Config, build_config
from evalwire.errors import EvalwireError, UsageError
from evalwire.models import (
    Evaluation,
    Example,
    ExperimentResult,
    Run,
    ScoreSummary,
)
from evalwire.plugins import Plugins
from evalwire.session import Session

__all__ = [
    "EvalwireProject",
    "Outcome",
    "evalwire_project",
    "run_evalwire",
    "run_evalwire_subprocess",
    "run_in_process",
    "run_subprocess",
]

#: Seconds a subprocess run may take before the test fails.
TIMEOUT = 60.0

ECHO_TASK = """
def task(input):
    return input
"""

_CONFIG_PLACEHOLDER = "# evalwire settings for this test project (written by evalwire.testing)\n"

#: Environment for subprocess runs: output that does not depend on who runs the tests.
_QUIET_ENVIRONMENT = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


# -- the project -----------------------------------------------------------------------


class EvalwireProject:
    """A throwaway evalwire project in a folder: experiments, datasets, ``evalwire.toml``.

    The folder always holds an ``evalwire.toml`` (a comment until
    :meth:`config` writes one), so it is the project root: whatever a run
    keeps in the project (the store's ``.evalwire/``) stays inside it. Every
    source string is dedented, so tests may indent it with the code around it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.experiments_dir = self.path / "experiments"
        self.experiments_dir.mkdir(parents=True, exist_ok=True)
        config = self.path / "evalwire.toml"
        if not config.exists():
            config.write_text(_CONFIG_PLACEHOLDER, encoding="utf-8")

    def __repr__(self) -> str:
        return f"<EvalwireProject {self.path}>"

    def __fspath__(self) -> str:
        return str(self.path)

    def experiment(
        self,
        name: str,
        task: str = ECHO_TASK,
        evaluators: Mapping[str, str] | None = None,
        rows: Sequence[Mapping[str, Any]] | None = None,
        *,
        dataset_location: str = "folder",
        files: Mapping[str, str] | None = None,
    ) -> Path:
        """Write experiment folder ``name`` and return it.

        ``task`` is the source of ``task.py`` (default: returns its input);
        ``evaluators`` maps a file stem to the source of that evaluator file;
        ``rows`` are the dataset's rows, ``{"input": ..., "expected": ...}``
        (``id`` and ``metadata`` optional), written as ``dataset.jsonl`` in the
        folder (``dataset_location="folder"``) or as ``datasets/NAME.jsonl``
        beside the experiments folder (``"datasets"``); ``None`` writes no
        dataset. ``files`` are other files to write, by path relative to the
        folder (helpers: ``{"_helpers.py": "..."}``).
        """
        if dataset_location not in ("folder", "datasets"):
            raise ValueError(
                f"dataset_location must be 'folder' or 'datasets', not {dataset_location!r}"
            )
        folder = self.experiments_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        self.write(folder / "task.py", task)
        for stem, source in (evaluators or {}).items():
            self.write(folder / f"{stem}.py", source)
        for relative, source in (files or {}).items():
            self.write(folder / relative, source)
        if rows is not None:
            if dataset_location == "folder":
                _write_jsonl(folder / "dataset.jsonl", rows)
            else:
                self.dataset(name, rows)
        return folder

    def dataset(self, name: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        """Write ``datasets/NAME.jsonl`` beside the experiments folder and return it."""
        return _write_jsonl(self.path / "datasets" / f"{name}.jsonl", rows)

    def config(self, toml_text: str) -> Path:
        """Write ``evalwire.toml`` (replacing the one there) and return its path."""
        return self.write(self.path / "evalwire.toml", toml_text)

    def write(self, path: str | os.PathLike[str], source: str) -> Path:
        """Write dedented ``source`` to ``path`` (relative to the project), creating folders."""
        target = Path(path)
        if not target.is_absolute():
            target = self.path / target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
        return target


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    for number, row in enumerate(rows, 1):
        if not isinstance(row, Mapping) or "input" not in row:
            raise ValueError(
                f"dataset row {number} must be a mapping with an 'input' key "
                f"(and optionally 'expected', 'id', 'metadata'), not {row!r}"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(dict(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _locate(target: EvalwireProject | str | os.PathLike[str]) -> tuple[Path, Path]:
    """(experiments folder, folder to run in) for a project or an experiments folder."""
    if isinstance(target, EvalwireProject):
        return target.experiments_dir, target.path
    folder = Path(target).resolve()
    return folder, folder.parent


# -- the outcome -----------------------------------------------------------------------


@dataclass
class Outcome:
    """What one evalwire run did: exit code, results, and everything it printed.

    ``results`` are the :class:`ExperimentResult` of every experiment, with
    their runs. From a subprocess they are read back from the ``--json``
    document (kept in ``document``), so outputs JSON cannot hold are their
    ``repr``. ``error`` is the message of a usage error (exit status 2), which
    is also on ``stderr``. ``config`` is the session's configuration, for
    in-process runs only.
    """

    exit_code: int
    results: list[ExperimentResult] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    document: dict[str, Any] | None = None
    error: str | None = None
    command: str = "evalwire"
    duration: float = 0.0
    config: Config | None = field(default=None, repr=False)

    # -- reading results ---------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The name of every experiment that ran, in the order the session reported them."""
        return [r.name for r in self.results]

    def result(self, name: str) -> ExperimentResult:
        """The result of experiment ``name``; a missing one is a :class:`LookupError`."""
        found = self._find(name)
        if found is None:
            raise LookupError(self._missing(name))
        return found

    def runs(self, name: str) -> list[Run]:
        """The runs of experiment ``name``, in ``(index, repetition)`` order."""
        return list(self.result(name).runs)

    def outputs(self, name: str) -> list[Any]:
        """The task's output of every run of experiment ``name``, in order."""
        return [run.output for run in self.runs(name)]

    def scores(self, name: str) -> dict[str, float]:
        """Each evaluator's mean score in experiment ``name`` (NaN if it gave none)."""
        return {ev: summary.mean for ev, summary in sorted(self.result(name).scores.items())}

    # -- assertions --------------------------------------------------------------------

    def assert_passed(self) -> None:
        """Every experiment ran and was scored without error, and evalwire exited 0."""
        __tracebackhide__ = True
        failed = [r for r in self.results if r.failed]
        if self.exit_code == 0 and not failed:
            return
        problems = [f"expected evalwire to pass, but it exited {self.exit_code}"]
        if self.error:
            problems.append(f"usage error: {self.error}")
        problems.extend(_describe_failure(r) for r in failed)
        raise AssertionError("\n".join(problems) + "\n" + self.transcript)

    def assert_exit(self, code: int) -> None:
        """evalwire exited with status ``code``."""
        __tracebackhide__ = True
        if self.exit_code != code:
            raise AssertionError(
                f"expected evalwire to exit {code}, but it exited {self.exit_code}\n"
                + self.transcript
            )

    def assert_score(
        self, experiment: str, evaluator: str, value: float, abs: float = 1e-9
    ) -> None:
        """Evaluator ``evaluator``'s mean score in ``experiment`` is ``value`` (within ``abs``)."""
        __tracebackhide__ = True
        result = self._find(experiment)
        if result is None:
            raise AssertionError(self._missing(experiment))
        summary = result.scores.get(evaluator)
        if summary is None:
            known = ", ".join(sorted(result.scores)) or "none"
            raise AssertionError(
                f"experiment '{experiment}' has no scores from evaluator '{evaluator}' "
                f"(it has: {known}; status {result.status}"
                + (f": {result.error}" if result.error else "")
                + ")\n"
                + self.transcript
            )
        mean = summary.mean
        if math.isnan(mean) or not math.isclose(mean, value, rel_tol=0.0, abs_tol=abs):
            scored = f"{summary.count} scored, {summary.errors} errors"
            raise AssertionError(
                f"experiment '{experiment}', evaluator '{evaluator}': mean score {mean!r} "
                f"({scored}), expected {value!r} ± {abs!r}\n"
                + _score_table(result)
                + self.transcript
            )

    # -- messages ------------------------------------------------------------------------

    @property
    def transcript(self) -> str:
        """The command, its exit status and everything it printed, for failure messages."""
        return (
            f"{self.command} -> exit {self.exit_code} in {self.duration:.2f}s\n"
            f"--- stdout\n{self.stdout}"
            + ("" if not self.stdout or self.stdout.endswith("\n") else "\n")
            + f"--- stderr\n{self.stderr}"
        )

    def _find(self, name: str) -> ExperimentResult | None:
        for result in self.results:
            if result.name == name:
                return result
        return None

    def _missing(self, name: str) -> str:
        found = ", ".join(repr(n) for n in self.names) or "none"
        return f"no experiment named '{name}' ran (found: {found})\n{self.transcript}"


def _describe_failure(result: ExperimentResult) -> str:
    lines = [f"experiment '{result.name}' {result.status}"]
    if result.error:
        lines[0] += f": {result.error}"
    shown = 0
    for run in result.runs:
        problems = [f"task: {run.error}"] if run.error else []
        problems += [f"{e.name}: {e.error}" for e in run.evaluations if e.error]
        for problem in problems:
            if shown == 5:
                lines.append("  ...")
                return "\n".join(lines)
            lines.append(f"  example {run.example_id} (repetition {run.repetition}) {problem}")
            shown += 1
    return "\n".join(lines)


def _score_table(result: ExperimentResult) -> str:
    rows = [
        f"  {name}: mean {s.mean!r} ({s.count} scored, {s.errors} errors)"
        for name, s in sorted(result.scores.items())
    ]
    return "scores of '" + result.name + "':\n" + "\n".join(rows) + "\n"


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
    experiments_dir, cwd = _locate(target)
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
    experiments_dir, default_cwd = _locate(target)
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
        results=_results_from_document(document),
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


# -- reading a --json document back -------------------------------------------------------


def _results_from_document(document: Mapping[str, Any] | None) -> list[ExperimentResult]:
    if not document:
        return []
    return [_result(e) for e in document.get("experiments", ())]


def _result(data: Mapping[str, Any]) -> ExperimentResult:
    scores = {}
    for name, s in (data.get("scores") or {}).items():
        count = int(s.get("count") or 0)
        mean = s.get("mean")
        scores[name] = ScoreSummary(
            count=count,
            total=float(mean) * count if mean is not None else 0.0,
            errors=int(s.get("errors") or 0),
        )
    return ExperimentResult(
        id=data.get("id", ""),
        name=data["name"],
        experiment_name=data.get("experiment_name", ""),
        dataset=data.get("dataset", ""),
        dataset_version=data.get("dataset_version"),
        status=data.get("status", "passed"),
        error=data.get("error"),
        started_at=data.get("started_at") or 0.0,
        ended_at=data.get("ended_at") or 0.0,
        total=data.get("total"),
        completed=data.get("completed", 0),
        task_errors=data.get("task_errors", 0),
        scores=scores,
        runs=[_run(r) for r in data.get("runs") or ()],
        params=dict(data.get("params") or {}),
        metadata=dict(data.get("metadata") or {}),
        dry_run=bool(data.get("dry_run")),
    )


def _run(data: Mapping[str, Any]) -> Run:
    example = Example(
        id=str(data.get("example_id", "")),
        input=dict(data.get("input") or {}),
        expected=dict(data.get("expected") or {}),
        metadata=dict(data.get("metadata") or {}),
    )
    evaluations = tuple(
        Evaluation(
            name=e["name"],
            score=e.get("score"),
            label=e.get("label"),
            explanation=e.get("explanation"),
            metadata=dict(e.get("metadata") or {}),
            error=e.get("error"),
            annotator_kind=e.get("annotator_kind") or "CODE",
        )
        for e in data.get("evaluations") or ()
    )
    return Run(
        example=example,
        repetition=int(data.get("repetition", 1)),
        output=data.get("output"),
        error=data.get("error"),
        started_at=data.get("started_at") or 0.0,
        ended_at=data.get("ended_at") or 0.0,
        attempts=int(data.get("attempts", 1)),
        evaluations=evaluations,
        index=int(data.get("index", 0)),
    )


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def evalwire_project(tmp_path: Path) -> EvalwireProject:
    """A throwaway evalwire project in ``tmp_path`` (see :class:`EvalwireProject`)."""
    return EvalwireProject(tmp_path)


@pytest.fixture
def run_evalwire() -> Callable[..., Outcome]:
    """Run evalwire in this process: ``run_evalwire(project, *names, plugins=[...], **settings)``.

    See :func:`run_in_process`; returns an :class:`Outcome`.
    """
    return run_in_process


@pytest.fixture
def run_evalwire_subprocess() -> Callable[..., Outcome]:
    """Run ``python -m evalwire run``: ``run_evalwire_subprocess(project, *cli_args)``.

    See :func:`run_subprocess`; returns an :class:`Outcome`.
    """
    return run_subprocess
