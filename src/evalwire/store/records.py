"""Writing to a store as a session runs: one writer thread, small transactions.

Reporting hooks hand experiments and runs to a :class:`Recorder`, which
queues them (a fraction of a microsecond, so the pipeline never waits on the
disk) for a dedicated writer thread. The writer commits what it has, then
collects what arrives during the next :data:`COMMIT_INTERVAL` (or until
:data:`MAX_BATCH` items wait) and commits that, and so on.

What "durable" means here: a run the reporter has heard of is committed
within about :data:`COMMIT_INTERVAL` (plus the few milliseconds a batch
takes to write; at once when the store was idle, since the first run after a
quiet spell does not wait). ``kill -9`` therefore loses the units in flight
and at most the runs heard in the last commit window. The store is in WAL
mode with ``synchronous=NORMAL``, so a commit survives the process dying;
only a power cut can take back the last commits.

If the writer falls far behind (:data:`MAX_QUEUE` waiting), the hooks wait
for it, so memory stays bounded and a kill never loses more than that.

A resumed experiment (``evalwire run --resume``) is not inserted again: its
row is reopened (status ``running``, totals cleared so readers count the
rows live) and the runs the resume did not keep are deleted, in the same
transaction, before any new run of it is written.

Starting or reopening a row notes this process as its writer (see
:mod:`evalwire.store.writer`), so that readers can tell a record whose
process was killed from one still being written. That is one value per
experiment; writing runs is untouched.
"""

from __future__ import annotations

import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire.store import rows
from evalwire.store.db import is_locked, retrying, transaction
from evalwire.store.rows import ENCODE_ERRORS, encode, finish_row, safe_repr
from evalwire.store.writer import this_process

if TYPE_CHECKING:
    from evalwire.models import ExperimentResult, Run

#: Longest a heard run waits before it is committed (the loss window of a kill).
COMMIT_INTERVAL = 0.05
#: Commit early once this many items wait.
MAX_BATCH = 2000
#: The hooks wait for the writer when this many items are queued.
MAX_QUEUE = 10_000  # measured: flat memory at 1M runs, same throughput
#: How long closing waits for the writer to finish before giving up on it.
CLOSE_TIMEOUT = 300.0
#: While encoding a batch the writer lets go of the GIL every this many runs,
#: for long enough that a waiting thread really gets it. Without this, the
#: event-loop thread can wait a whole switch interval (5 ms) for the GIL in
#: the middle of an evaluator call, and the callables adapter takes that for
#: a slow evaluator and moves it to a thread pool, which costs far more.
_YIELD_EVERY = 128
_YIELD_FOR = 0.0002

_EXPERIMENT, _RUN, _FINISH, _FLUSH, _STOP, _REOPEN = range(6)

#: A resumed experiment's row, back to running; the final UPDATE sets the rest.
REOPEN_EXPERIMENT = """UPDATE experiments SET
    status = 'running', ended_at = NULL, error = NULL, completed = NULL, task_errors = NULL,
    scores = NULL, total = ?, dataset_version = ?, git_commit = coalesce(?, git_commit),
    writer = ?
WHERE id = ?"""


@dataclass
class _Experiment:
    """What the writer remembers about an experiment it is recording."""

    name: str
    warned: bool = False


@dataclass
class _Batch:
    """One transaction's worth of work, in arrival order."""

    ops: list[tuple[int, Any]] = field(default_factory=list)
    runs: int = 0
    flushes: list[threading.Event] = field(default_factory=list)
    stop: bool = False


class Recorder:
    """Records experiments and runs into an open store, on a writer thread.

    The hook-facing methods (:meth:`start_experiment`, :meth:`add_run`,
    :meth:`finish_experiment`) only queue; :meth:`flush` waits until all
    queued work is committed; :meth:`close` flushes, stops the writer, closes
    the connection and returns the number of runs that could not be recorded.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        interval: float = COMMIT_INTERVAL,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.conn = conn
        self.path = path
        self.interval = interval
        self.lost_runs = 0
        self.commits = 0
        #: Noted on every row this recorder starts or reopens.
        self.writer = this_process().to_json()
        self._warn = warn or _stderr
        self._failed = False
        self._experiments: dict[str, _Experiment] = {}
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="evalwire-store", daemon=True)
        self._thread.start()

    # -- the hooks' side ------------------------------------------------------

    def start_experiment(self, row: tuple[Any, ...]) -> None:
        """Queue an experiment's row (from :func:`evalwire.store.rows.experiment_row`)."""
        self._queue.put((_EXPERIMENT, row))

    def reopen_experiment(
        self,
        row: tuple[Any, ...],
        keep: frozenset[tuple[str, int]],
        *,
        total: int | None,
        dataset_version: str | None,
        git_commit: str | None,
    ) -> None:
        """Queue the reopening of a resumed experiment's row (``row[0]`` is its id).

        Its recorded runs whose (example id, repetition) is not in ``keep``
        are deleted: the session runs those again. A record the store does
        not hold (another plugin answered the resume) is inserted from ``row``.
        """
        self._queue.put((_REOPEN, (row, keep, (total, dataset_version, git_commit))))

    def add_run(self, experiment_id: str, run: Run) -> None:
        """Queue one completed run of a started experiment."""
        q = self._queue
        if q.qsize() > MAX_QUEUE:
            self._wait_for_writer()
        q.put((_RUN, experiment_id, run))

    def finish_experiment(self, result: ExperimentResult) -> None:
        """Queue an experiment's final status and totals."""
        self._queue.put((_FINISH, finish_row(result)))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is committed; ``False`` on timeout."""
        if not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        return done.wait(timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """Commit what is queued, stop the writer and close the store; runs lost."""
        if self._closed:
            return self.lost_runs
        self._closed = True
        if self._thread.is_alive():
            self._queue.put((_STOP,))
            self._thread.join(timeout)
        if self._thread.is_alive():
            self.lost_runs += self._queue.qsize()
            self._warn(
                f"evalwire: error: store {self.path}: still writing after {timeout:g} s; "
                "giving up on the runs not yet recorded"
            )
        else:
            self.conn.close()
        return self.lost_runs

    def _wait_for_writer(self) -> None:
        # Back-pressure: better to slow the experiment than to hold (and risk
        # losing to a kill) an unbounded backlog.
        while self._queue.qsize() > MAX_QUEUE // 2 and self._thread.is_alive():
            time.sleep(0.001)

    # -- the writer's side ----------------------------------------------------

    def _serve(self) -> None:
        last_write = 0.0
        while True:
            batch = self._collect(last_write)
            if batch.ops:
                # Commits are paced from the start of the last write, so
                # under load one lands every COMMIT_INTERVAL, however long
                # the writing took.
                last_write = time.monotonic()
                self._write(batch)
            for event in batch.flushes:
                event.set()
            if batch.stop:
                return

    def _collect(self, last_write: float) -> _Batch:
        q = self._queue
        batch = _Batch()
        item = q.get()
        deadline = last_write + self.interval
        while True:
            kind = item[0]
            if kind == _RUN:
                batch.runs += 1
                batch.ops.append((_RUN, item))
            elif kind == _FLUSH:
                batch.flushes.append(item[1])
                return batch
            elif kind == _STOP:
                batch.stop = True
                return batch
            else:
                batch.ops.append((kind, item[1]))
            if len(batch.ops) >= MAX_BATCH:
                return batch
            remaining = deadline - time.monotonic()
            try:
                item = q.get(timeout=remaining) if remaining > 0 else q.get_nowait()
            except queue.Empty:
                return batch

    def _write(self, batch: _Batch) -> None:
        try:
            plan = self._plan(batch.ops, scrub=False)
            try:
                retrying(lambda: self._execute(plan))
            except (sqlite3.InterfaceError, UnicodeError):
                # A value SQLite will not bind (a lone surrogate in an error
                # message): scrub every text and try once more.
                retrying(lambda: self._execute(self._plan(batch.ops, scrub=True)))
            self.commits += 1
        except Exception as exc:
            self.lost_runs += batch.runs
            if not self._failed:
                self._failed = True
                why = "it stayed locked" if is_locked(exc) else f"{type(exc).__name__}: {exc}"
                self._warn(f"evalwire: error: store {self.path}: cannot record runs ({why})")

    def _plan(self, ops: list[tuple[int, Any]], *, scrub: bool) -> list[tuple[int, Any]]:
        """Encode everything before taking the write lock, so transactions stay short."""
        plan: list[tuple[int, Any]] = []
        runs: list[tuple[Any, ...]] = []
        evaluations: list[tuple[Any, ...]] = []
        for kind, payload in ops:
            if kind == _RUN:
                self._encode_run(payload[1], payload[2], len(runs), runs, evaluations)
                if len(runs) % _YIELD_EVERY == 0:
                    # Step aside for a moment (see _YIELD_EVERY).
                    time.sleep(_YIELD_FOR)
                continue
            if runs:
                plan.append((_RUN, (runs, evaluations)))
                runs, evaluations = [], []
            if kind == _EXPERIMENT:
                self._experiments.setdefault(payload[0], _Experiment(payload[1]))
            elif kind == _REOPEN:
                row = payload[0]
                self._experiments.setdefault(row[0], _Experiment(row[1]))
            plan.append((kind, payload))
        if runs:
            plan.append((_RUN, (runs, evaluations)))
        return [(k, rows.scrubbed(p)) for k, p in plan] if scrub else plan

    def _encode_run(
        self,
        experiment_id: str,
        run: Run,
        position: int,
        runs: list[tuple[Any, ...]],
        evaluations: list[tuple[Any, ...]],
    ) -> None:
        example = run.example
        try:
            values = (
                encode(example.input),
                encode(example.expected),
                encode(example.metadata),
                encode(run.output),
            )
        except ENCODE_ERRORS:
            dump = self._dump
            values = (
                dump(example.input, experiment_id, example.id, "input"),
                dump(example.expected, experiment_id, example.id, "expected"),
                dump(example.metadata, experiment_id, example.id, "metadata"),
                dump(run.output, experiment_id, example.id, "output"),
            )
        runs.append(
            (
                experiment_id,
                example.id,
                run.index,
                run.repetition,
                *values,
                run.error,
                run.attempts,
                run.started_at,
                run.ended_at,
                run.trace_id,
            )
        )
        for e in run.evaluations:
            evaluations.append(
                (
                    position,
                    e.name,
                    e.score,
                    e.label,
                    e.explanation,
                    self._dump(
                        e.metadata, experiment_id, example.id, f"evaluation '{e.name}' metadata"
                    )
                    if e.metadata
                    else "{}",
                    e.error,
                    e.annotator_kind,
                )
            )

    def _dump(self, value: Any, experiment_id: str, example_id: str, what: str) -> str:
        try:
            return encode(value)
        except ENCODE_ERRORS as exc:
            info = self._experiments.setdefault(experiment_id, _Experiment(experiment_id))
            if not info.warned:
                info.warned = True
                self._warn(
                    f"evalwire: warning: store: experiment '{info.name}': the {what} of "
                    f"example '{example_id}' is not JSON-serializable ({exc}); it is stored "
                    "as its repr (so is any further such value in this experiment)"
                )
            return encode(safe_repr(value))

    def _execute(self, plan: list[tuple[int, Any]]) -> None:
        conn = self.conn
        with transaction(conn):
            # Run ids are handed out under the write lock, so two processes
            # writing one store never collide; evaluations point at them.
            next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM runs").fetchone()[0]
            for kind, payload in plan:
                if kind == _RUN:
                    runs, evaluations = payload
                    base = next_id
                    numbered = [(base + i, *row) for i, row in enumerate(runs)]
                    rows.insert_many(conn, "runs", rows.RUN_COLUMNS, numbered)
                    rows.insert_many(
                        conn,
                        "evaluations",
                        rows.EVALUATION_COLUMNS,
                        [(base + row[0], *row[1:]) for row in evaluations],
                    )
                    next_id += len(runs)
                elif kind == _EXPERIMENT:
                    conn.execute(rows.INSERT_EXPERIMENT, (*payload, self.writer))
                elif kind == _FINISH:
                    conn.execute(rows.FINISH_EXPERIMENT, payload)
                elif kind == _REOPEN:
                    row, keep, values = payload
                    _reopen(conn, row, keep, values, self.writer)


def _reopen(
    conn: sqlite3.Connection,
    row: tuple[Any, ...],
    keep: frozenset[tuple[str, int]],
    values: tuple[Any, ...],
    writer: str,
) -> None:
    experiment_id = row[0]
    if conn.execute(REOPEN_EXPERIMENT, (*values, writer, experiment_id)).rowcount == 0:
        conn.execute(rows.INSERT_EXPERIMENT, (*row, writer))
        return
    stale = [
        (run_id,)
        for run_id, example_id, repetition in conn.execute(
            "SELECT id, example_id, repetition FROM runs WHERE experiment_id = ?",
            (experiment_id,),
        ).fetchall()
        if (example_id, repetition) not in keep
    ]
    if stale:
        conn.executemany("DELETE FROM evaluations WHERE run_id = ?", stale)
        conn.executemany("DELETE FROM runs WHERE id = ?", stale)


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
