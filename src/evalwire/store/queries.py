"""Reading a store back: experiments, their runs and evaluations, and ID lookup.

Experiments are referred to by full id, by a unique prefix of it, or as
``last`` / ``last~N`` (the N-th most recent before the last). ``last`` is
scoped to one experiment name: the ``--name`` given, else the only name in
the store; when the store holds several names and none is given, ``last``
is refused rather than guessed (comparing the last ``capitals`` run with the
last ``retrieval`` run is never what was meant).

A record stored as ``running`` whose writer is gone reads back as
``interrupted`` (see :mod:`evalwire.store.writer`); the store itself is not
changed.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from evalwire.errors import UsageError
from evalwire.models import SUMMARY_FIELDS, Evaluation, Example, Run, evaluation_to_dict
from evalwire.store.compare import Key, RunScores
from evalwire.store.writer import Writer, shown_status

_LAST = re.compile(r"^last(?:~(\d+))?$")
_COLUMNS = (
    "id, name, experiment_name, dataset, dataset_version, task_hash, evaluator_hashes, "
    "params, metadata, git_commit, started_at, ended_at, status, error, total, completed, "
    "task_errors, scores, writer"
)
_NEWEST_FIRST = "ORDER BY started_at DESC, rowid DESC"
#: The metadata key linking a rescored record to the one whose outputs it scored.
RESCORED_FROM = "rescored_from"


@dataclass(frozen=True)
class StoredExperiment:
    """One recorded experiment. ``scores`` maps evaluator → mean, count, errors.

    ``status`` is as readers show it: ``interrupted`` for a record stored as
    ``running`` whose writer (the process that started or last reopened it)
    is known to be gone.
    """

    id: str
    name: str
    experiment_name: str
    dataset: str
    dataset_version: str | None
    task_hash: str | None
    evaluator_hashes: dict[str, str | None]
    params: dict[str, Any]
    metadata: dict[str, Any]
    git_commit: str | None
    started_at: float
    ended_at: float | None
    status: str
    error: str | None
    total: int | None
    completed: int
    task_errors: int
    scores: dict[str, dict[str, Any]]
    writer: Writer | None = None

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)

    @property
    def evaluation_errors(self) -> int:
        return sum(int(s.get("errors") or 0) for s in self.scores.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f: getattr(self, f) for f in SUMMARY_FIELDS},
            "scores": self.scores,
            "params": self.params,
            "metadata": self.metadata,
            "git_commit": self.git_commit,
            "task_hash": self.task_hash,
            "evaluator_hashes": self.evaluator_hashes,
            "writer": None if self.writer is None else self.writer.to_dict(),
        }


@dataclass(frozen=True)
class StoredEvaluation:
    """One evaluation as recorded."""

    name: str
    score: float | None
    label: str | None
    explanation: str | None
    metadata: dict[str, Any]
    error: str | None
    annotator_kind: str

    def to_evaluation(self) -> Evaluation:
        """The :class:`Evaluation` this row records."""
        return Evaluation(
            self.name,
            self.score,
            self.label,
            self.explanation,
            dict(self.metadata),
            self.error,
            self.annotator_kind,
        )

    def to_dict(self) -> dict[str, Any]:
        return evaluation_to_dict(self.to_evaluation())


@dataclass(frozen=True)
class StoredRun:
    """One run as recorded, with its evaluations in the order they were given."""

    example_id: str
    index: int
    repetition: int
    input: Any
    expected: Any
    metadata: Any
    output: Any
    error: str | None
    attempts: int
    started_at: float
    ended_at: float
    evaluations: list[StoredEvaluation] = field(default_factory=list)
    trace_id: str | None = None

    @property
    def failed(self) -> bool:
        """A task error, an evaluation error, or a score below 1."""
        return self.error is not None or any(
            e.error is not None or (e.score is not None and e.score < 1) for e in self.evaluations
        )

    def to_run(self) -> Run:
        """The :class:`Run` this row records, as a session would have reported it.

        Outputs come back as JSON gave them: a tuple is a list, and an output
        JSON could not hold is the string of its ``repr``.
        """
        return Run(
            example=Example(
                self.example_id,
                _as_dict(self.input),
                _as_dict(self.expected),
                _as_dict(self.metadata),
            ),
            repetition=self.repetition,
            output=self.output,
            error=self.error,
            started_at=self.started_at,
            ended_at=self.ended_at,
            attempts=self.attempts,
            evaluations=tuple(e.to_evaluation() for e in self.evaluations),
            index=self.index,
            trace_id=self.trace_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "index": self.index,
            "repetition": self.repetition,
            "input": self.input,
            "expected": self.expected,
            "metadata": self.metadata,
            "output": self.output,
            "error": self.error,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.ended_at - self.started_at,
            "trace_id": self.trace_id,
            "evaluations": [e.to_dict() for e in self.evaluations],
        }


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _as_dict(value: Any) -> dict[str, Any]:
    # An example's fields are dicts; one JSON could not hold was stored as
    # the string of its repr, which is kept rather than dropped.
    if isinstance(value, dict):
        return value
    return {} if value is None else {"repr": value}


def _experiment(conn: sqlite3.Connection, row: tuple[Any, ...]) -> StoredExperiment:
    (
        id_,
        name,
        experiment_name,
        dataset,
        dataset_version,
        task_hash,
        evaluator_hashes,
        params,
        metadata,
        git_commit,
        started_at,
        ended_at,
        status,
        error,
        total,
        completed,
        task_errors,
        scores,
        writer_json,
    ) = row
    writer = Writer.from_json(writer_json)
    if scores is None or completed is None:
        # Still running, or killed before it finished: count what was recorded.
        completed, task_errors, live = _live_totals(conn, id_)
        scores = live
    else:
        scores = json.loads(scores)
    return StoredExperiment(
        id_,
        name,
        experiment_name,
        dataset,
        dataset_version,
        task_hash,
        _loads(evaluator_hashes) or {},
        _loads(params) or {},
        _loads(metadata) or {},
        git_commit,
        started_at,
        ended_at,
        shown_status(status, writer),
        error,
        total,
        completed,
        task_errors or 0,
        scores,
        writer,
    )


def _live_totals(
    conn: sqlite3.Connection, experiment_id: str
) -> tuple[int, int, dict[str, dict[str, Any]]]:
    completed, task_errors = conn.execute(
        "SELECT count(*), count(error) FROM runs WHERE experiment_id = ?", (experiment_id,)
    ).fetchone()
    scores = {
        name: {"mean": mean, "count": count, "errors": errors}
        for name, mean, count, errors in conn.execute(
            "SELECT e.name, avg(e.score), count(e.score), count(e.error) "
            "FROM evaluations e JOIN runs r ON r.id = e.run_id "
            "WHERE r.experiment_id = ? GROUP BY e.name ORDER BY e.name",
            (experiment_id,),
        )
    }
    return completed, task_errors, scores


def list_experiments(
    conn: sqlite3.Connection, *, name: str | None = None, limit: int | None = None
) -> list[StoredExperiment]:
    """Recorded experiments, newest first; only those called ``name`` if given."""
    sql = f"SELECT {_COLUMNS} FROM experiments"
    args: list[Any] = []
    if name is not None:
        sql += " WHERE name = ?"
        args.append(name)
    sql += f" {_NEWEST_FIRST}"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [_experiment(conn, row) for row in conn.execute(sql, args).fetchall()]


def latest(conn: sqlite3.Connection, name: str) -> StoredExperiment | None:
    """The most recent record of experiment ``name`` that ran its task, or ``None``.

    Records made by ``evalwire rescore`` (metadata ``rescored_from``) share
    their original's name but replayed stored outputs: they are skipped.
    """
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM experiments WHERE name = ? {_NEWEST_FIRST}", (name,)
    )
    for row in cursor:
        metadata = _loads(row[8]) or {}
        if isinstance(metadata, dict) and RESCORED_FROM in metadata:
            continue
        return _experiment(conn, row)
    return None


def experiment_names(conn: sqlite3.Connection) -> list[str]:
    """Every experiment name in the store, sorted."""
    return [r[0] for r in conn.execute("SELECT DISTINCT name FROM experiments ORDER BY name")]


def resolve(
    conn: sqlite3.Connection, ref: str, *, name: str | None = None, where: str = "the store"
) -> StoredExperiment:
    """The experiment ``ref`` names (id, unique id prefix, ``last``, ``last~N``).

    Raises :class:`UsageError` (exit 2) when nothing or several match.
    """
    ref = ref.strip()
    last = _LAST.match(ref)
    if last:
        return _resolve_last(conn, int(last.group(1) or 0), name, ref, where)
    row = conn.execute(f"SELECT {_COLUMNS} FROM experiments WHERE id = ?", (ref,)).fetchone()
    if row is not None:
        return _experiment(conn, row)
    rows = (
        conn.execute(
            f"SELECT {_COLUMNS} FROM experiments WHERE substr(id, 1, ?) = ? {_NEWEST_FIRST} "
            "LIMIT 6",
            (len(ref), ref.lower()),
        ).fetchall()
        if ref
        else []
    )
    if len(rows) == 1:
        return _experiment(conn, rows[0])
    if rows:
        listed = ", ".join(f"{r[0][:12]} ({r[1]})" for r in rows[:5])
        raise UsageError(
            f"'{ref}' matches several experiments in {where}: {listed}; give more of the id"
        )
    raise UsageError(f"no experiment '{ref}' in {where} (see `evalwire history`)")


def _resolve_last(
    conn: sqlite3.Connection, back: int, name: str | None, ref: str, where: str
) -> StoredExperiment:
    if name is None:
        names = experiment_names(conn)
        if not names:
            raise UsageError(f"no experiments are recorded in {where} yet")
        if len(names) > 1:
            raise UsageError(
                f"'{ref}' is ambiguous: {where} holds experiments named "
                f"{', '.join(names)}; say which with --name NAME"
            )
        name = names[0]
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM experiments WHERE name = ? {_NEWEST_FIRST} LIMIT 1 OFFSET ?",
        (name, back),
    ).fetchall()
    if not rows:
        count = conn.execute("SELECT count(*) FROM experiments WHERE name = ?", (name,))
        found = count.fetchone()[0]
        if not found:
            raise UsageError(f"no experiment named '{name}' in {where} (see `evalwire history`)")
        raise UsageError(
            f"'{ref}' goes back too far: {where} holds {found} experiment(s) named '{name}'"
        )
    return _experiment(conn, rows[0])


def iter_runs(conn: sqlite3.Connection, experiment_id: str) -> Iterator[StoredRun]:
    """An experiment's runs in example order, each with its evaluations (streamed)."""
    cursor = conn.execute(
        "SELECT r.id, r.example_id, r.idx, r.repetition, r.input, r.expected, r.metadata, "
        "r.output, r.error, r.attempts, r.started_at, r.ended_at, r.trace_id, "
        "e.name, e.score, e.label, e.explanation, e.metadata, e.error, e.annotator_kind "
        "FROM runs r LEFT JOIN evaluations e ON e.run_id = r.id "
        "WHERE r.experiment_id = ? ORDER BY r.idx, r.repetition, r.id, e.id",
        (experiment_id,),
    )
    current: StoredRun | None = None
    current_id = None
    for row in cursor:
        if row[0] != current_id:
            if current is not None:
                yield current
            current_id = row[0]
            current = StoredRun(
                row[1],
                row[2],
                row[3],
                _loads(row[4]),
                _loads(row[5]),
                _loads(row[6]),
                _loads(row[7]),
                row[8],
                row[9],
                row[10],
                row[11],
                trace_id=row[12],
            )
        if row[13] is not None and current is not None:
            current.evaluations.append(
                StoredEvaluation(
                    row[13], row[14], row[15], row[16], _loads(row[17]) or {}, row[18], row[19]
                )
            )
    if current is not None:
        yield current


def run_scores(conn: sqlite3.Connection, experiment_id: str) -> dict[Key, RunScores]:
    """What :func:`evalwire.store.compare.compare` needs of each run, by (example, repetition)."""
    found: dict[Key, RunScores] = {}
    rows = conn.execute(
        "SELECT r.id, r.example_id, r.repetition, r.error, e.name, e.score, e.error "
        "FROM runs r LEFT JOIN evaluations e ON e.run_id = r.id "
        "WHERE r.experiment_id = ? ORDER BY r.id",
        (experiment_id,),
    )
    current_id = None
    scores: dict[str, float | None] = {}
    errors: set[str] = set()
    for run_id, example_id, repetition, error, name, score, eval_error in rows:
        if run_id != current_id:
            current_id = run_id
            scores, errors = {}, set()
            # A duplicated example id keeps its first run, so matching stays one-to-one.
            found.setdefault((example_id, repetition), RunScores(error, scores, errors))
        if name is not None:
            scores[name] = score
            if eval_error is not None:
                errors.add(name)
    return found
