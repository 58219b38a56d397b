"""Baselines for regression gates: the recorded means an experiment is compared with.

``evalwire run --baseline last --max-regression accuracy=0.02`` compares each
experiment's mean ``accuracy`` with the mean its baseline record holds. This
module finds those records in the store; :mod:`evalwire.gates` does the
comparing.

``last`` is the most recent *finished* record of the experiment's name that
started before the session: status ``passed`` or ``failed`` (both have
means; a failed record is one where some task or evaluator raised), never an
``error`` record (nothing ran), a ``running`` one (still being written), an
``interrupted`` one (its process was killed before it finished, see
:mod:`evalwire.store.writer`: its means cover only the runs it got to), or a
dry run (never recorded). An explicit id (or unique prefix) names one
record, whatever its name and status: a running or interrupted one serves
with the means of the runs it holds, and its ``status`` says which it is.

The store is only read here: it is opened with
:func:`evalwire.store.db.open_store` without ``create``, so a missing store
stays missing.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalwire.errors import UsageError
from evalwire.store.writer import Writer, shown_status

__all__ = ["Baseline", "by_id", "last", "match_id", "reading"]

#: The statuses of a finished record whose means can serve as a baseline.
FINISHED = ("passed", "failed")
_COLUMNS = "id, name, started_at, ended_at, status, scores, writer"


@dataclass(frozen=True)
class Baseline:
    """A recorded experiment as a baseline: its id, name and mean per evaluator.

    ``means`` holds ``None`` for an evaluator the record has only errors or
    labels for (no mean).
    """

    id: str
    name: str
    started_at: float
    status: str
    means: dict[str, float | None] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def mean(self, evaluator: str) -> float | None:
        """The baseline's mean for ``evaluator``, or ``None`` when it has none."""
        value = self.means.get(evaluator)
        if value is None or not math.isfinite(value):
            return None
        return float(value)


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection | None]:
    """The store at ``path`` opened for reading, or ``None`` when there is none."""
    from evalwire.store.db import open_store

    conn = open_store(path, create=False)
    try:
        yield conn
    finally:
        if conn is not None:
            conn.close()


def last(conn: sqlite3.Connection, names: Iterable[str], *, before: float) -> dict[str, Baseline]:
    """For each of ``names``, its most recent finished record started before ``before``.

    Names without such a record are left out of the answer.
    """
    found: dict[str, Baseline] = {}
    statuses = ", ".join("?" * len(FINISHED))
    sql = (
        f"SELECT {_COLUMNS} FROM experiments WHERE name = ? AND started_at < ? "
        f"AND ended_at IS NOT NULL AND scores IS NOT NULL AND status IN ({statuses}) "
        "ORDER BY started_at DESC, rowid DESC LIMIT 1"
    )
    for name in dict.fromkeys(names):
        row = conn.execute(sql, (name, before, *FINISHED)).fetchone()
        if row is not None:
            found[name] = _baseline(conn, row)
    return found


def by_id(conn: sqlite3.Connection, ref: str, *, where: str) -> Baseline:
    """The record whose id is ``ref`` or starts with it.

    Raises :class:`UsageError` naming ``where`` when none or several match.
    """
    record_id = match_id(conn, ref, where=where, what="baseline")
    row = conn.execute(f"SELECT {_COLUMNS} FROM experiments WHERE id = ?", (record_id,)).fetchone()
    return _baseline(conn, row)


def match_id(conn: sqlite3.Connection, ref: str, *, where: str, what: str = "experiment") -> str:
    """The full id of the record whose id is ``ref`` or starts with it.

    Raises :class:`UsageError` naming ``what`` was asked for and ``where``
    when none or several match.
    """
    ref = ref.strip()
    row = conn.execute("SELECT id FROM experiments WHERE id = ?", (ref,)).fetchone()
    if row is not None:
        return str(row[0])
    rows = (
        conn.execute(
            "SELECT id, name FROM experiments WHERE substr(id, 1, ?) = ? "
            "ORDER BY started_at DESC, rowid DESC LIMIT 6",
            (len(ref), ref.lower()),
        ).fetchall()
        if ref
        else []
    )
    if len(rows) == 1:
        return str(rows[0][0])
    if rows:
        listed = ", ".join(f"{r[0][:12]} ({r[1]})" for r in rows[:5])
        raise UsageError(
            f"{what} '{ref}' matches several experiments in {where}: {listed}; give more of the id"
        )
    raise UsageError(
        f"{what} '{ref}': no experiment with that id in {where} (see `evalwire history`)"
    )


def _baseline(conn: sqlite3.Connection, row: tuple[Any, ...]) -> Baseline:
    id_, name, started_at, ended_at, status, scores, writer = row
    if scores is None or ended_at is None:
        means = _live_means(conn, id_)  # an unfinished record named by id: what it holds
    else:
        means = {str(k): _mean(v) for k, v in (json.loads(scores) or {}).items()}
    return Baseline(id_, name, started_at, shown_status(status, Writer.from_json(writer)), means)


def _mean(summary: Any) -> float | None:
    value = summary.get("mean") if isinstance(summary, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _live_means(conn: sqlite3.Connection, experiment_id: str) -> dict[str, float | None]:
    return {
        name: mean
        for name, mean in conn.execute(
            "SELECT e.name, avg(e.score) FROM evaluations e JOIN runs r ON r.id = e.run_id "
            "WHERE r.experiment_id = ? GROUP BY e.name",
            (experiment_id,),
        )
    }
