"""Exporting an experiment's runs: one row per run, with its evaluations.

``jsonl`` and ``json`` rows are the runs as ``evalwire show --json`` gives
them, plus the experiment's id and name. ``csv`` flattens each row: nested
values (input, expected, metadata, and an output that is not a string) are
JSON text, and each evaluator
gets the columns ``eval.NAME.score``, ``eval.NAME.label``,
``eval.NAME.explanation`` and ``eval.NAME.error``. Rows are streamed, so an
experiment of any size exports in constant memory (``csv`` reads the
evaluator names first).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from typing import Any, TextIO

from evalwire.store.queries import StoredExperiment, StoredRun, iter_runs

FORMATS = ("csv", "json", "jsonl")
_EVAL_FIELDS = ("score", "label", "explanation", "error")
_RUN_FIELDS = (
    "experiment_id",
    "experiment",
    "example_id",
    "index",
    "repetition",
    "input",
    "expected",
    "metadata",
    "output",
    "error",
    "attempts",
    "started_at",
    "ended_at",
    "duration",
)


def _row(experiment: StoredExperiment, run: StoredRun) -> dict[str, Any]:
    return {"experiment_id": experiment.id, "experiment": experiment.name, **run.to_dict()}


def rows(conn: sqlite3.Connection, experiment: StoredExperiment) -> Iterator[dict[str, Any]]:
    """Every run of ``experiment`` as an export row."""
    for run in iter_runs(conn, experiment.id):
        yield _row(experiment, run)


def evaluator_names(conn: sqlite3.Connection, experiment_id: str) -> list[str]:
    """The evaluators that scored any run of the experiment, in first-seen order."""
    found = conn.execute(
        "SELECT e.name FROM evaluations e JOIN runs r ON r.id = e.run_id "
        "WHERE r.experiment_id = ? GROUP BY e.name ORDER BY min(e.id)",
        (experiment_id,),
    )
    return [r[0] for r in found]


def write(conn: sqlite3.Connection, experiment: StoredExperiment, fmt: str, out: TextIO) -> int:
    """Write every run of ``experiment`` to ``out`` in ``fmt``; returns the number of rows."""
    count = 0
    if fmt == "jsonl":
        for row in rows(conn, experiment):
            out.write(json.dumps(row, default=str) + "\n")
            count += 1
    elif fmt == "json":
        out.write("[")
        for row in rows(conn, experiment):
            out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(row, default=str))
            count += 1
        out.write("\n]\n" if count else "]\n")
    elif fmt == "csv":
        names = evaluator_names(conn, experiment.id)
        columns = [*_RUN_FIELDS, *(f"eval.{n}.{f}" for n in names for f in _EVAL_FIELDS)]
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows(conn, experiment):
            writer.writerow(_flat(row))
            count += 1
    else:  # pragma: no cover - click restricts the choice
        raise ValueError(f"unknown export format {fmt!r}")
    return count


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key in _RUN_FIELDS:
        value = row.get(key)
        if value is None:
            value = ""
        elif key in ("input", "expected", "metadata", "output") and not isinstance(value, str):
            # Text stays text (what a spreadsheet wants); anything else is JSON.
            value = json.dumps(value, default=str)
        flat[key] = value
    for evaluation in row["evaluations"]:
        for field in _EVAL_FIELDS:
            value = evaluation.get(field)
            flat[f"eval.{evaluation['name']}.{field}"] = "" if value is None else value
    return flat
