"""Turning experiments and runs into rows: JSON text, and the SQL that writes them.

Dicts and outputs are stored as JSON text. A value JSON cannot hold (an
object, NaN, a cycle) is stored as the JSON string of its ``repr`` instead:
recording never fails because of what a task returned.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from itertools import chain
from typing import TYPE_CHECKING, Any

from evalwire.store.provenance import code_hashes

if TYPE_CHECKING:
    from evalwire.models import ExperimentResult
    from evalwire.session import Experiment

#: Takes an :func:`experiment_row` and, last, the writer: the recorder adds that
#: (the process that writes the record, see :mod:`evalwire.store.writer`).
INSERT_EXPERIMENT = """INSERT INTO experiments (
    id, name, experiment_name, dataset, dataset_version, task_hash, evaluator_hashes,
    params, metadata, git_commit, started_at, status, total, writer
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
RUN_COLUMNS = (
    "id, experiment_id, example_id, idx, repetition, input, expected, metadata, "
    "output, error, attempts, started_at, ended_at, trace_id"
)
EVALUATION_COLUMNS = "run_id, name, score, label, explanation, metadata, error, annotator_kind"
#: Bound parameters per statement: SQLite's smallest limit, before 3.32.
_MAX_VARIABLES = 999
FINISH_EXPERIMENT = """UPDATE experiments SET
    dataset_version = ?, ended_at = ?, status = ?, error = ?, total = ?,
    completed = ?, task_errors = ?, scores = ?, extra = ?
WHERE id = ?"""
#: Replaces an experiment's ``extra`` (``evalwire sync`` notes the Phoenix experiment).
UPDATE_EXTRA = "UPDATE experiments SET extra = ? WHERE id = ?"

ENCODE_ERRORS = (TypeError, ValueError, OverflowError, RecursionError)


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encoder() -> Callable[[Any], str]:
    """Compact, ASCII-only JSON, refusing NaN; the C encoder built once.

    ``json.dumps`` builds a new C encoder on every call, which costs three
    times the encoding of a small dict; at tens of thousands of runs a second
    that matters. ASCII-only, so a lone surrogate cannot make SQLite refuse
    the text.
    """
    try:
        from _json import make_encoder
    except ImportError:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
    encoder = make_encoder(
        None, _refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


encode = _make_encoder()
"""Compact ASCII JSON text of a value; raises one of :data:`ENCODE_ERRORS`."""


def experiment_row(experiment: Experiment, git_commit: str | None) -> tuple[Any, ...]:
    """The ``experiments`` row of an experiment that is starting (status ``running``),
    all of :data:`INSERT_EXPERIMENT` but the writer."""
    spec, result = experiment.spec, experiment.result
    task_hash, evaluator_hashes = code_hashes(spec)
    return (
        result.id,
        result.name,
        result.experiment_name,
        result.dataset,
        result.dataset_version,
        task_hash,
        encode(evaluator_hashes),
        to_json(result.params),
        to_json(result.metadata),
        git_commit,
        result.started_at,
        "running",
        result.total,
    )


def to_json(value: Any) -> str:
    """JSON text, or the JSON string of ``repr(value)`` when JSON cannot hold it."""
    try:
        return encode(value)
    except ENCODE_ERRORS:
        return encode(safe_repr(value))


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a placeholder naming its type when ``__repr__`` raises."""
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not lose the run
        return f"<unrepresentable {type(value).__name__}: {exc}>"


def finish_row(result: ExperimentResult) -> tuple[Any, ...]:
    """The values :data:`FINISH_EXPERIMENT` sets when an experiment ends."""
    scores = {
        name: {"mean": _finite(s.mean), "count": s.count, "errors": s.errors}
        for name, s in sorted(result.scores.items())
    }
    return (
        result.dataset_version,
        result.ended_at,
        result.status,
        result.error,
        result.total,
        result.completed,
        result.task_errors,
        encode(scores),
        # A copy: a plugin's worker thread may still be adding to ``extra``
        # (the Phoenix recorder notes its experiment when Phoenix answers).
        extra_json(dict(result.extra)),
        result.id,
    )


def extra_json(extra: dict[str, Any]) -> str:
    """``extra`` as a JSON object; a value JSON cannot hold becomes the string of its repr."""
    try:
        return encode(extra)
    except ENCODE_ERRORS:
        return encode({str(key): _jsonable(value) for key, value in extra.items()})


def _jsonable(value: Any) -> Any:
    try:
        encode(value)
    except ENCODE_ERRORS:
        return safe_repr(value)
    return value


def _finite(value: float) -> float | None:
    # JSON has no NaN: no scores (or a NaN score) means no mean.
    return value if math.isfinite(value) else None


def insert_many(
    conn: sqlite3.Connection, table: str, columns: str, rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` many to a statement.

    Python's sqlite3 lets go of the GIL around every statement it steps; one
    statement per row makes the writer trade the GIL with the experiment's
    threads hundreds of thousands of times a second, which costs more than
    the writing. Multi-row ``INSERT``s cut that by the chunk size.
    """
    if not rows:
        return
    width = len(rows[0])
    chunk = max(1, _MAX_VARIABLES // width)
    one = "(" + ", ".join("?" * width) + ")"
    full = len(rows) - len(rows) % chunk
    if full:
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * chunk)
        conn.executemany(
            sql, (tuple(chain.from_iterable(rows[i : i + chunk])) for i in range(0, full, chunk))
        )
    rest = rows[full:]
    if rest:
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * len(rest))
        conn.execute(sql, tuple(chain.from_iterable(rest)))


def scrubbed(payload: Any) -> Any:
    """``payload`` with every string made encodable (lone surrogates replaced)."""
    if isinstance(payload, str):
        return payload.encode("utf-8", "replace").decode("utf-8")
    if isinstance(payload, tuple | list):
        return type(payload)(scrubbed(p) for p in payload)
    return payload
