"""``SimpleExperimentTracker``: the store and CSV files, written from a log() call.

See :mod:`evalwire.tracking` for the whole story.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from evalwire.errors import UsageError
from evalwire.models import Evaluation, Example, ExperimentResult, ExperimentSpec, Run
from evalwire.store import DEFAULT_FILE, DEFAULT_FOLDER
from evalwire.tracking.scores import ScoreError, ScorePath, dotted, extract_score, score_path

if TYPE_CHECKING:
    from types import TracebackType

    from evalwire.session import Experiment
    from evalwire.store.records import Recorder

__all__ = ["SimpleExperimentTracker"]

#: The result keys that become the example and the run; the others are kept as metadata.
_RUN_FIELDS = ("input", "expected", "output", "error", "id")


@dataclass
class _OpenRun:
    """A run (experiment record) this tracker may still log to."""

    result: ExperimentResult
    written: bool = False  # its experiments row is queued


@dataclass(frozen=True)
class _Started:
    """What :func:`evalwire.store.rows.experiment_row` reads of an experiment: a
    tracker has no session, so no :class:`~evalwire.session.Experiment`."""

    spec: ExperimentSpec
    result: ExperimentResult


class SimpleExperimentTracker:
    """Log evaluated results into evalwire's store and CSV files (see the module docs).

    ``project_name`` is the experiment name in the store; ``output_dir`` holds
    ``evalwire.db`` and the CSV files (default ``.evalwire``, relative to the
    current folder); ``score_key`` finds the score in each result;
    ``score_name`` names the evaluation (default: the path, dot-joined).
    A store that cannot be opened (a foreign file at its path) raises
    :class:`~evalwire.errors.UsageError` here, before anything is logged.
    """

    def __init__(
        self,
        project_name: str,
        output_dir: str | Path = DEFAULT_FOLDER,
        score_key: ScorePath = "score",
        *,
        score_name: str | None = None,
        csv: bool = True,
    ) -> None:
        if not isinstance(project_name, str) or not project_name.strip():
            raise UsageError(f"project_name must be a non-empty string, not {project_name!r}")
        from evalwire.store.db import open_store
        from evalwire.store.records import Recorder

        self.project_name = project_name
        self.output_dir = Path(output_dir).expanduser().absolute()
        self.store_path = self.output_dir / DEFAULT_FILE
        self.score_path = score_path(score_key)
        self.score_name = score_name or dotted(self.score_path)
        self.csv = csv
        conn = open_store(self.store_path, create=True)
        assert conn is not None  # create=True always opens
        self._recorder: Recorder = Recorder(conn, self.store_path)
        self._lock = threading.RLock()
        self._runs: dict[str, _OpenRun] = {}
        self._broken_files: set[str] = set()
        self._git_commit: str | None = None
        self._git_checked = False
        self._closed = False
        # A run is recorded only once something is logged to it, so a tracker
        # used only through start_run() leaves no empty record behind.
        self.run_id = self._open_run(None, None)
        atexit.register(self.close)

    # -- runs ---------------------------------------------------------------------

    def start_run(self, name: str | None = None, metadata: Mapping[str, Any] | None = None) -> str:
        """Start a new run (experiment record), make it the current one, return its id.

        ``name`` is its ``experiment_name`` (default ``PROJECT_<UTC time>``). The
        run is recorded at once, so it is listed even before anything is logged.
        Runs started before stay open until :meth:`finish_run` or :meth:`close`.
        """
        with self._lock:
            self._check_open()
            run_id = self._open_run(name, metadata)
            self._write_start(self._runs[run_id])
            self.run_id = run_id
            return run_id

    def finish_run(self, run_id: str | None = None) -> ExperimentResult:
        """Finish a run (default: the current one) and return its totals.

        Its record gets its final status (``passed``, or ``failed`` when a
        result had an error or no score) and totals, and ``leaderboard.csv``
        its row. Logging without ``run_id`` afterwards starts a new run.
        """
        with self._lock:
            self._check_open()
            run_id = run_id or self.run_id
            run = self._runs.pop(run_id, None)
            if run is None:
                raise self._unknown(run_id)
            self._finish(run)
            if run_id == self.run_id:
                self.run_id = self._open_run(None, None)
        self._recorder.flush()
        return run.result

    def close(self) -> None:
        """Finish every open run, commit everything and close the store (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for run in self._runs.values():
                self._finish(run)
            self._runs.clear()
        self._recorder.close()
        atexit.unregister(self.close)

    def __enter__(self) -> SimpleExperimentTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- logging --------------------------------------------------------------------

    def log(
        self,
        result: Mapping[str, Any],
        *,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> Run:
        """Record one evaluated result under ``run_id`` (default: the current run).

        ``result`` is a dict: ``input``, ``expected`` and ``output`` become the
        run's example and output (a value that is not a dict is kept as
        ``{"value": ...}``), ``id`` its example id (default: its position),
        ``error`` a task error; the other keys, ``extra`` and then ``metadata``
        are kept as the example's metadata. The score at ``score_key`` becomes
        one evaluation; without one, that evaluation records the error.
        Returns the :class:`~evalwire.models.Run` recorded.
        """
        return self.log_batch([result], run_id=run_id, metadata=metadata, **extra)[0]

    def log_batch(
        self,
        results: Iterable[Mapping[str, Any]],
        *,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> list[Run]:
        """:meth:`log` each of ``results`` (one CSV write for them all)."""
        batch = list(results)
        if not batch:
            return []
        for item in batch:
            if not isinstance(item, Mapping):
                raise TypeError(
                    f"{type(self).__name__}.log takes a dict of results, not {type(item).__name__}"
                )
        with self._lock:
            self._check_open()
            run = self._runs.get(run_id or self.run_id)
            if run is None:
                raise self._unknown(run_id or self.run_id)
            self._write_start(run)
            result = run.result
            runs = [
                self._to_run(item, result.completed + i, metadata, extra)
                for i, item in enumerate(batch)
            ]
            for done in runs:
                self._recorder.add_run(result.id, done)
                result.record(done)
            self._append_results(result, runs)
        return runs

    async def alog(
        self,
        result: Mapping[str, Any],
        *,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> Run:
        """:meth:`log`, in a worker thread so the event loop never waits on the disk."""
        return await asyncio.to_thread(self.log, result, run_id=run_id, metadata=metadata, **extra)

    async def alog_batch(
        self,
        results: Iterable[Mapping[str, Any]],
        *,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> list[Run]:
        """:meth:`log_batch`, in a worker thread."""
        return await asyncio.to_thread(
            self.log_batch, list(results), run_id=run_id, metadata=metadata, **extra
        )

    # -- reading back ---------------------------------------------------------------

    def get_experiment_history(self) -> list[dict[str, Any]]:
        """The project's runs, newest first, as ``evalwire history --json`` gives them,
        plus ``run_id`` and the score's ``mean``, ``count`` and ``errors``."""
        from evalwire.store.queries import list_experiments

        with self._reading() as conn:
            found = list_experiments(conn, name=self.project_name) if conn else []
        history = []
        for record in found:
            score = record.scores.get(self.score_name) or {}
            history.append(
                {
                    **record.to_dict(),
                    "run_id": record.id,
                    "mean": score.get("mean"),
                    "count": int(score.get("count") or 0),
                    "errors": int(score.get("errors") or 0),
                }
            )
        return history

    def get_run_results(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The results logged under ``run_id`` (default: the current run), in
        logging order, as ``evalwire show --json`` gives runs, plus ``score``
        and ``score_error``. A run of another project or none raises
        :class:`~evalwire.errors.UsageError`."""
        from evalwire.store.queries import iter_runs

        run_id = run_id or self.run_id
        with self._reading() as conn:
            row = (
                conn.execute("SELECT name FROM experiments WHERE id = ?", (run_id,)).fetchone()
                if conn
                else None
            )
            if row is None or row[0] != self.project_name:
                if run_id in self._runs:  # open, nothing logged yet
                    return []
                raise UsageError(
                    f"no run '{run_id}' of project '{self.project_name}' in the store "
                    f"{self.store_path} (see get_experiment_history())"
                )
            assert conn is not None
            stored = [r.to_dict() for r in iter_runs(conn, run_id)]
        for entry in stored:
            mine = [e for e in entry["evaluations"] if e["name"] == self.score_name]
            entry["run_id"] = run_id
            entry["score"] = mine[0]["score"] if mine else None
            entry["score_error"] = mine[0]["error"] if mine else None
        return stored

    # -- inside -----------------------------------------------------------------------

    def _open_run(self, name: str | None, metadata: Mapping[str, Any] | None) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        result = ExperimentResult(
            id=uuid.uuid4().hex,
            name=self.project_name,
            experiment_name=name or f"{self.project_name}_{stamp}",
            dataset=self.project_name,
            status="running",
            started_at=time.time(),
            metadata=dict(metadata or {}),
        )
        self._runs[result.id] = _OpenRun(result)
        return result.id

    def _write_start(self, run: _OpenRun) -> None:
        if run.written:
            return
        from evalwire.store.provenance import git_commit
        from evalwire.store.rows import experiment_row

        if not self._git_checked:
            self._git_checked = True
            self._git_commit = git_commit(Path.cwd())
        run.result.started_at = time.time()
        spec = ExperimentSpec(name=self.project_name, task=None, metadata=run.result.metadata)
        started = cast("Experiment", _Started(spec, run.result))
        self._recorder.start_experiment(experiment_row(started, self._git_commit))
        run.written = True

    def _finish(self, run: _OpenRun) -> None:
        if not run.written:
            return
        result = run.result
        result.ended_at = time.time()
        result.total = result.completed
        result.status = "failed" if result.task_errors or result.evaluation_errors else "passed"
        self._recorder.finish_experiment(result)
        if self.csv:
            from evalwire.builtin.csv import LEADERBOARD_COLUMNS, LEADERBOARD_FILE, leaderboard_rows

            self._append(
                LEADERBOARD_FILE, LEADERBOARD_COLUMNS, leaderboard_rows(result, [self.score_name])
            )

    def _to_run(
        self,
        item: Mapping[str, Any],
        index: int,
        metadata: Mapping[str, Any] | None,
        extra: Mapping[str, Any],
    ) -> Run:
        fields = {**item, **extra}
        try:
            score: float | None = extract_score(fields, self.score_path)
            problem = None
        except ScoreError as exc:
            score, problem = None, str(exc)
        example_id = fields.get("id")
        rest = {k: v for k, v in fields.items() if k not in _RUN_FIELDS}
        error = fields.get("error")
        now = time.time()
        return Run(
            example=Example(
                id=str(index) if example_id is None else str(example_id),
                input=_as_dict(fields.get("input")),
                expected=_as_dict(fields.get("expected")),
                metadata={**rest, **(metadata or {})},
            ),
            repetition=1,
            output=fields.get("output"),
            error=None if error is None else str(error),
            started_at=now,
            ended_at=now,
            evaluations=(Evaluation(self.score_name, score, error=problem),),
            index=index,
        )

    def _append_results(self, result: ExperimentResult, runs: list[Run]) -> None:
        if not self.csv:
            return
        from evalwire.builtin.csv import RESULTS_COLUMNS, RESULTS_FILE, result_rows

        rows = [row for run in runs for row in result_rows(result.id, result.name, run)]
        self._append(RESULTS_FILE, RESULTS_COLUMNS, rows)

    def _append(self, file: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        # A CSV file that cannot be written is said once; the store still has everything.
        if file in self._broken_files:
            return
        from evalwire.builtin._files import cannot_write
        from evalwire.builtin.csv import append_rows, failure_reason

        path = self.output_dir / file
        try:
            append_rows(path, columns, rows)
        except Exception as exc:
            self._broken_files.add(file)
            cannot_write("CSV results", path, failure_reason(exc))

    def _reading(self) -> Any:
        from contextlib import closing, nullcontext

        from evalwire.store.db import open_store

        self._recorder.flush()
        conn = open_store(self.store_path, create=False)
        return nullcontext(None) if conn is None else closing(conn)

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(
                f"the tracker for '{self.project_name}' is closed; make a new "
                "SimpleExperimentTracker to log more"
            )

    def _unknown(self, run_id: str) -> UsageError:
        return UsageError(
            f"no run '{run_id}' of project '{self.project_name}' is open in this tracker "
            f"(store: {self.store_path}); start one with start_run()"
        )


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return {"value": value}
