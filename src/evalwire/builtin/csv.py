"""The ``csv`` reporter: ``--csv DIR`` appends results to two CSV files in DIR.

``DIR/experiment_results.csv`` gets one row per (run, evaluation), written as
runs complete: the experiment's id and name, the example id, the repetition,
the task's output as JSON text and its error, then the evaluator, score,
label, explanation and evaluation error (empty for a run with no
evaluations). ``DIR/leaderboard.csv`` gets one row per (experiment,
evaluator) as each experiment finishes: when, which experiment on which
dataset, its status, runs and task errors, and the evaluator's mean, count
and errors. Both files are appended to across sessions (long format, so
experiments with different evaluators share the columns); the header is
written when a file is new, and a file whose header differs is left alone.

A dry run appends nothing, as it records nothing anywhere. Rows are
buffered and written in batches (every :data:`BATCH_ROWS` rows or
:data:`FLUSH_INTERVAL` seconds, and when an experiment ends), so
``evalwire_run_complete`` stays cheap at many thousands of runs a second.
A file that cannot be written is named on stderr once; the session goes on
and exits 1.

(This module is ``evalwire.builtin.csv``; ``import csv`` below is absolute,
so it is the standard library's.)
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import os
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

from evalwire.builtin._files import cannot_write, reason, target
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    from evalwire.config import OptionParser
    from evalwire.models import ExperimentResult, Run
    from evalwire.session import Experiment, Session

NAME = "csv"
OPTION = "csv_dir"
RESULTS_FILE = "experiment_results.csv"
LEADERBOARD_FILE = "leaderboard.csv"
RESULTS_COLUMNS = (
    "experiment_id",
    "experiment",
    "example_id",
    "repetition",
    "output",
    "error",
    "evaluator",
    "score",
    "label",
    "explanation",
    "eval_error",
)
LEADERBOARD_COLUMNS = (
    "timestamp",
    "experiment_id",
    "experiment",
    "experiment_name",
    "dataset",
    "dataset_version",
    "status",
    "runs",
    "task_errors",
    "evaluator",
    "mean",
    "count",
    "errors",
)
BATCH_ROWS = 2000  # buffered rows written at once
FLUSH_INTERVAL = 1.0  # seconds a completed run may wait in the buffer

_NO_EVALUATION = (None, None, None, None, None)
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=repr).encode


# -- hooks -------------------------------------------------------------------


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--csv",
        dest=OPTION,
        default=None,
        metavar="DIR",
        help=f"Append every run to DIR/{RESULTS_FILE} and every experiment's means to "
        f"DIR/{LEADERBOARD_FILE}.",
    )


@hookimpl
def evalwire_session_start(session: Session) -> None:
    config = session.config
    old = config.stash.pop(NAME, None)
    if isinstance(old, _Writer):  # a previous session on this config was interrupted
        old.close()
    if config.getoption(OPTION) is None or config.dry_run_size is not None:
        return
    try:
        folder = target(config, OPTION)
    except Exception as exc:
        folder = None
        problem: str | None = f"{type(exc).__name__}: {exc}"
    else:
        problem = None
    writer = _Writer(folder)
    writer.problem = problem
    config.stash[NAME] = writer


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    writer = experiment.config.stash.get(NAME)
    if isinstance(writer, _Writer) and experiment.result.status != "error":
        if writer.open_results():
            experiment.stash[NAME] = _Sink(writer, experiment.id, experiment.name)


@hookimpl
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    sink: _Sink | None = experiment.stash.get(NAME)
    if sink is not None:
        sink.add(run)


@hookimpl
def evalwire_experiment_finish(experiment: Experiment, result: ExperimentResult) -> None:
    writer = experiment.config.stash.get(NAME)
    if not isinstance(writer, _Writer):
        return
    experiment.stash.pop(NAME, None)
    writer.flush()
    declared = [str(n) for n in (experiment.spec.evaluators or ())]
    writer.append_leaderboard(leaderboard_rows(result, declared))


@hookimpl
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    writer = session.config.stash.pop(NAME, None)
    if not isinstance(writer, _Writer):
        return None
    writer.close()
    return 1 if writer.failed else None


# -- writing -----------------------------------------------------------------


class _Writer:
    """The session's two files: the results file stays open, rows go in batches."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.problem: str | None = None  # why nothing can be written at all
        self.failed = False
        self.results: TextIO | None = None
        self.results_writer: Any = None
        self.pending: list[tuple[Any, ...]] = []
        self.next_flush = 0.0
        self.closed = False
        self.leaderboard_broken = False
        atexit.register(self.close)  # an interrupted session keeps what it buffered

    def open_results(self) -> bool:
        """Open the results file (once); ``False`` if it cannot be written."""
        if self.results is not None:
            return True
        if self.failed or self.closed:
            return False
        if self.problem is not None or self.folder is None:
            self._fail(self.folder, self.problem or "no folder")
            return False
        path = self.folder / RESULTS_FILE
        try:
            self.results = _open_for_append(path, RESULTS_COLUMNS)
        except Exception as exc:  # a folder that is a file, no permission, a foreign file
            self._fail(path, failure_reason(exc))
            return False
        self.results_writer = csv.writer(self.results)
        self.next_flush = time.monotonic() + FLUSH_INTERVAL
        return True

    def flush(self) -> None:
        """Write the buffered rows and flush the file."""
        pending, self.pending = self.pending, []
        self.next_flush = time.monotonic() + FLUSH_INTERVAL
        results = self.results
        if results is None:
            return
        try:
            if pending:
                self.results_writer.writerows(pending)
            results.flush()
        except Exception as exc:
            self.results = None
            _close_quietly(results)
            self._fail(self.folder / RESULTS_FILE if self.folder else None, failure_reason(exc))

    def append_leaderboard(self, rows: list[tuple[Any, ...]]) -> None:
        if self.folder is None or self.leaderboard_broken or not rows:
            return
        path = self.folder / LEADERBOARD_FILE
        try:
            append_rows(path, LEADERBOARD_COLUMNS, rows)
        except Exception as exc:
            self.leaderboard_broken = True
            self._fail(path, failure_reason(exc))

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        results, self.results = self.results, None
        if results is not None:
            try:
                results.close()
            except OSError as exc:
                self._fail(self.folder / RESULTS_FILE if self.folder else None, failure_reason(exc))
        atexit.unregister(self.close)

    def _fail(self, path: Path | None, why: str) -> None:
        self.failed = True
        cannot_write("CSV results", path, why)


class _Sink:
    """One experiment's rows into the session's results file (in ``experiment.stash``)."""

    __slots__ = ("experiment_id", "name", "writer")

    def __init__(self, writer: _Writer, experiment_id: str, name: str) -> None:
        self.writer = writer
        self.experiment_id = experiment_id
        self.name = name

    def add(self, run: Run) -> None:
        writer = self.writer
        if writer.results is None:  # the file broke; said so already
            return
        pending = writer.pending
        pending.extend(result_rows(self.experiment_id, self.name, run))
        if len(pending) >= BATCH_ROWS or time.monotonic() >= writer.next_flush:
            writer.flush()


def result_rows(experiment_id: str, name: str, run: Run) -> list[tuple[Any, ...]]:
    """The :data:`RESULTS_COLUMNS` rows of one run: one per evaluation, or one with
    empty evaluation columns for a run with no evaluations."""
    output = run.output
    try:
        text = _encode(output)
    except (TypeError, ValueError, RecursionError):  # NaN, cycles: keep what it looked like
        text = _encode(repr(output))
    base = (experiment_id, name, run.example.id, run.repetition, text, run.error)
    if not run.evaluations:
        return [base + _NO_EVALUATION]
    return [(*base, e.name, e.score, e.label, e.explanation, e.error) for e in run.evaluations]


def append_rows(path: Path, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Append ``rows`` to the CSV file ``path`` in one write (so they stay together),
    writing the header ``columns`` first if the file is new.

    Raises ``OSError``, or an error :func:`failure_reason` explains when the
    file exists with other columns (it is then left untouched).
    """
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    with _open_for_append(path, columns) as fh:
        fh.write(buffer.getvalue())


def leaderboard_rows(result: ExperimentResult, declared: list[str]) -> list[tuple[Any, ...]]:
    """One row per evaluator (declared first, then any others); one row with no
    evaluator for an experiment that has none."""
    stamp = datetime.fromtimestamp(result.started_at or time.time(), timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    base = (
        stamp,
        result.id,
        result.name,
        result.experiment_name,
        result.dataset,
        result.dataset_version,
        result.status,
        result.completed,
        result.task_errors,
    )
    names = list(dict.fromkeys([*declared, *sorted(result.scores)]))
    if not names:
        return [(*base, None, None, None, None)]
    rows: list[tuple[Any, ...]] = []
    for name in names:
        summary = result.scores.get(name)
        if summary is None:
            rows.append((*base, name, None, 0, 0))
        else:
            mean = summary.mean if summary.count else None
            rows.append((*base, name, mean, summary.count, summary.errors))
    return rows


class _Refused(Exception):
    """An existing file whose columns are not ours: appending would garble it."""


def _open_for_append(path: Path, columns: tuple[str, ...]) -> TextIO:
    """``path`` open for appending; the header is written if the file is new or empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a", encoding="utf-8", newline="")
    try:
        if os.fstat(fh.fileno()).st_size == 0:
            csv.writer(fh).writerow(columns)
            fh.flush()
        else:
            with open(path, encoding="utf-8", newline="") as existing:
                header = next(csv.reader(existing), None)
            if header is not None and tuple(header) != columns:
                raise _Refused(
                    f"it exists with other columns ({', '.join(header[:4])}, ...); "
                    "move it aside to start a new one"
                )
    except BaseException:
        fh.close()
        raise
    return fh


def failure_reason(exc: BaseException) -> str:
    """Why :func:`append_rows` (or opening a results file) failed, in a few words."""
    return str(exc) if isinstance(exc, _Refused) else reason(exc)


def _close_quietly(fh: TextIO) -> None:
    try:
        fh.close()
    except Exception:
        pass
