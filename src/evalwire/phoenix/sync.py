"""``evalwire sync``: post to Phoenix what the embedded store holds and Phoenix lacks.

When Phoenix stops answering during ``evalwire run``, the run goes on and the
store keeps every run and evaluation. ``evalwire sync [ID]`` later goes
through the store's records that were run on a Phoenix dataset (every one, or
the one ID names) and, for each:

1. finds its Phoenix experiment: the one the recorder created (its id is in
   the record's ``extra``), else one on the same dataset with the record's
   experiment name (created after the record was written), else creates it
   as the recorder would have (same name, metadata, dataset version, splits
   and repetitions), and notes its id in the store;
2. lists the runs Phoenix holds for it (``GET /v1/experiments/{id}/runs``)
   and the evaluations on each (``GET /v1/experiments/{id}/json``), matched
   to the store's runs by dataset example and repetition number;
3. posts the runs Phoenix lacks with their evaluations, and the evaluations
   Phoenix lacks on runs it holds, through the same
   :class:`~evalwire.phoenix.posting.Poster` (a 409 for a run means Phoenix
   has it: done).

Nothing is posted twice, so a second sync posts nothing. A record whose
session was killed before the experiment finished has no such notes (the
store writes them when an experiment ends) and is not synced; finish it with
``evalwire run --resume`` first. A record made
against another Phoenix server than the one sync talks to is skipped, with
a note saying which server to give. Requests are retried as the recorder
retries them (``[phoenix] attempts`` and ``backoff``), ``[phoenix] workers``
at once. The exit status is 1 when something could not be posted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from evalwire.errors import EvalwireError, UsageError
from evalwire.models import Evaluation, Run
from evalwire.phoenix.client import Connection, describe
from evalwire.phoenix.posting import (
    Poster,
    create_experiment,
    evaluation_args,
    experiment_metadata,
    retrying,
)
from evalwire.store.queries import iter_runs

__all__ = ["Outcome", "Settings", "render", "sync"]

_RECORD_COLUMNS = "id, name, experiment_name, dataset, metadata, params, status, extra"
Key = tuple[str, int]  # (Phoenix dataset example node id, repetition number)


@dataclass(frozen=True)
class Settings:
    """How hard to try: requests at once, attempts per request, first back-off."""

    workers: int = 8
    attempts: int = 8
    backoff: float = 0.5
    timeout: float = 60.0


@dataclass
class Outcome:
    """What sync did for one store record."""

    record_id: str
    name: str
    experiment_id: str | None = None
    created: bool = False
    already: int = 0  # runs Phoenix held
    posted: int = 0  # runs posted
    evaluations: int = 0  # evaluations posted (with those runs, or on runs Phoenix held)
    failed: int = 0  # runs or evaluations that could not be posted
    skipped: str | None = None  # why nothing was tried
    error: str | None = None  # the first thing that went wrong
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def note(self, error: str) -> None:
        with self.lock:
            if self.error is None:
                self.error = error


@dataclass(frozen=True)
class _Record:
    id: str
    name: str
    experiment_name: str
    dataset: str
    metadata: dict[str, Any]
    params: dict[str, Any]
    status: str
    extra: dict[str, Any]


# -- the whole sync -----------------------------------------------------------------


def sync(
    conn: sqlite3.Connection,
    connection: Connection,
    settings: Settings,
    *,
    ref: str | None = None,
    where: str = "the store",
) -> list[Outcome]:
    """Sync every record run on a Phoenix dataset (or only the record ``ref`` names).

    Once Phoenix cannot be reached at all, the records left are not tried
    (each would wait out every retry): they fail with the same reason.
    """
    import httpx

    outcomes = []
    unreachable: str | None = None
    for record in _records(conn, ref, where):
        outcome = Outcome(record.id, record.name)
        outcomes.append(outcome)
        server = record.extra.get("phoenix_server")
        if server and _normal(server) != _normal(connection.url):
            outcome.skipped = f"recorded in Phoenix at {server}; sync it with --phoenix {server}"
            continue
        if unreachable is not None:
            outcome.note(unreachable)
            outcome.count(failed=1)
            continue
        try:
            _sync_record(conn, connection, settings, record, outcome)
        except Exception as exc:  # one record's trouble must not stop the others
            outcome.note(str(exc) if isinstance(exc, EvalwireError) else describe(exc, connection))
            outcome.count(failed=1)
            if isinstance(exc, httpx.TransportError):
                unreachable = f"not tried: {describe(exc, connection)}"
    return outcomes


def _sync_record(
    conn: sqlite3.Connection,
    connection: Connection,
    settings: Settings,
    record: _Record,
    outcome: Outcome,
) -> None:
    extra = record.extra

    def retry(call: Callable[[], Any]) -> Any:
        return retrying(call, attempts=settings.attempts, backoff=settings.backoff)

    http = _http(connection)
    dataset_id = str(extra["phoenix_dataset_id"])
    experiment_id = extra.get("phoenix_experiment_id")
    if experiment_id is None:
        experiment_id = retry(lambda: _find_experiment(http, dataset_id, record.experiment_name))
    if experiment_id is None:
        experiment_id = retry(
            lambda: create_experiment(
                connection.client,
                dataset_id=dataset_id,
                version_id=extra.get("phoenix_dataset_version_id"),
                name=record.experiment_name,
                metadata=experiment_metadata(record.dataset, record.metadata, record.params),
                splits=extra.get("phoenix_splits") or (),
                repetitions=int(extra.get("phoenix_repetitions") or 1),
                timeout=settings.timeout,
            )["id"]
        )
        outcome.created = True
    outcome.experiment_id = experiment_id = str(experiment_id)
    if extra.get("phoenix_experiment_id") != experiment_id:
        url = connection.client.experiments.get_experiment_url(dataset_id, experiment_id)
        _note_experiment(conn, record, experiment_id, url)

    node_ids = retry(lambda: _node_ids(connection, dataset_id, extra, settings))
    held = retry(lambda: _held_runs(http, experiment_id))
    annotated = retry(lambda: _annotations(http, experiment_id)) if held else {}
    poster = Poster(connection.client, experiment_id, settings.timeout, retry)

    def failed(evaluation: Evaluation, exc: Exception) -> None:
        outcome.count(failed=1)
        outcome.note(f"evaluation '{evaluation.name}': {describe(exc, connection)}")

    def post_run(node_id: str, run: Run) -> None:
        try:
            run_id = poster.run(node_id, run)
        except Exception as exc:
            outcome.count(failed=1)
            outcome.note(describe(exc, connection))
            return
        outcome.count(posted=1, evaluations=poster.evaluations(run_id, run, on_error=failed))

    def post_evaluations(run_id: str, run: Run, missing: list[Evaluation]) -> None:
        posted = poster.evaluations(run_id, run, missing, on_error=failed)
        outcome.count(evaluations=posted)

    seen: set[Key] = set()
    jobs: list[Future[None]] = []
    with ThreadPoolExecutor(max(1, settings.workers), "evalwire-sync") as pool:
        for run in (stored.to_run() for stored in iter_runs(conn, record.id)):
            node_id = node_ids.get(run.example.id)
            if node_id is None:
                outcome.count(failed=1)
                outcome.note(
                    f"example {run.example.id} is not in the Phoenix dataset "
                    f"(version {extra.get('phoenix_dataset_version_id')})"
                )
                continue
            key = (node_id, run.repetition)
            if key in seen:
                continue  # one run per (example, repetition), as in Phoenix
            seen.add(key)
            run_id = held.get(key)
            if run_id is None:
                jobs.append(pool.submit(post_run, node_id, run))
                continue
            outcome.count(already=1)
            names = annotated.get(key, set())
            missing = [
                e for e in run.evaluations if e.name not in names and evaluation_args(e) is not None
            ]
            if missing:
                jobs.append(pool.submit(post_evaluations, run_id, run, missing))
    for job in jobs:
        job.result()  # the jobs catch what Phoenix can do wrong: this raises only a bug


def _normal(url: str) -> str:
    return url.strip().rstrip("/").lower()


# -- the store's side -----------------------------------------------------------------


def _records(conn: sqlite3.Connection, ref: str | None, where: str) -> list[_Record]:
    """The records to sync, oldest first: those run on a Phoenix dataset, or ``ref``'s."""
    if ref is not None:
        from evalwire.store.baseline import match_id

        record_id = match_id(conn, ref, where=where)
        row = conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM experiments WHERE id = ?", (record_id,)
        ).fetchone()
        record = _record(row)
        if not record.extra.get("phoenix_dataset_id"):
            why = (
                "it has not finished (still running, or killed)"
                if record.status == "running"
                else "its dataset did not come from Phoenix"
            )
            raise UsageError(
                f"experiment {record.id[:12]} ({record.name}) has nothing to sync: {why}"
            )
        return [record]
    rows = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM experiments "
        """WHERE extra LIKE '%"phoenix_dataset_id"%' ORDER BY started_at, rowid"""
    ).fetchall()
    records = [_record(row) for row in rows]
    return [r for r in records if r.extra.get("phoenix_dataset_id")]


def _record(row: tuple[Any, ...]) -> _Record:
    id_, name, experiment_name, dataset, metadata, params, status, extra = row
    return _Record(
        id_,
        name,
        experiment_name,
        dataset,
        _object(metadata),
        _object(params),
        status,
        _object(extra),
    )


def _object(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _note_experiment(
    conn: sqlite3.Connection, record: _Record, experiment_id: str, url: str
) -> None:
    """Keep the Phoenix experiment's id with the record, so the next sync goes straight to it."""
    from evalwire.store.db import retrying as retry_locked
    from evalwire.store.db import transaction
    from evalwire.store.rows import UPDATE_EXTRA, extra_json

    extra = {**record.extra, "phoenix_experiment_id": experiment_id, "phoenix_url": url}

    def write() -> None:
        with transaction(conn):
            conn.execute(UPDATE_EXTRA, (extra_json(extra), record.id))

    retry_locked(write)


# -- Phoenix's side -------------------------------------------------------------------


def _http(connection: Connection) -> Any:
    """The ``httpx.Client`` under the Phoenix client, for the REST calls it has no method for."""
    if connection.http is not None:
        return connection.http
    return connection.client._client  # a client given to evalwire: its own transport


def _find_experiment(http: Any, dataset_id: str, name: str) -> str | None:
    """The id of the experiment on ``dataset_id`` named ``name``, if there is exactly one."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = http.get(f"v1/datasets/{dataset_id}/experiments", params=params)
        response.raise_for_status()
        body = response.json()
        found += [str(e["id"]) for e in body.get("data", []) if e.get("name") == name]
        cursor = body.get("next_cursor")
        if not cursor:
            break
    if len(found) > 1:
        raise UsageError(
            f"Phoenix holds {len(found)} experiments named {name} on dataset {dataset_id}; "
            "cannot tell which one is this record's"
        )
    return found[0] if found else None


def _node_ids(
    connection: Connection, dataset_id: str, extra: dict[str, Any], settings: Settings
) -> dict[str, str]:
    """Example id → the node id runs are posted against, for the recorded dataset version."""
    found = connection.client.datasets.get_dataset(
        dataset={"id": dataset_id},
        version_id=extra.get("phoenix_dataset_version_id"),
        timeout=settings.timeout,
    )
    return {str(row["id"]): str(row.get("node_id") or row["id"]) for row in found.examples}


def _held_runs(http: Any, experiment_id: str) -> dict[Key, str]:
    """The runs Phoenix holds for an experiment: (example, repetition) → run id."""
    held: dict[Key, str] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = http.get(f"v1/experiments/{experiment_id}/runs", params=params)
        if response.status_code == 404:
            raise UsageError(
                f"the Phoenix experiment {experiment_id} is gone (deleted?); nothing was posted"
            )
        response.raise_for_status()
        body = response.json()
        for run in body.get("data", []):
            held[str(run["dataset_example_id"]), int(run["repetition_number"])] = str(run["id"])
        cursor = body.get("next_cursor")
        if not cursor:
            return held


def _annotations(http: Any, experiment_id: str) -> dict[Key, set[str]]:
    """The evaluation names Phoenix holds on each run of an experiment."""
    response = http.get(f"v1/experiments/{experiment_id}/json")
    if response.status_code == 404:  # Phoenix's answer for an experiment with no runs
        return {}
    response.raise_for_status()
    return {
        (str(run["example_id"]), int(run["repetition_number"])): {
            str(a["name"]) for a in run.get("annotations") or ()
        }
        for run in response.json()
    }


# -- the summary -------------------------------------------------------------------------


def render(outcomes: list[Outcome], phoenix_url: str) -> list[str]:
    """The summary table: one line per record, then the problems."""
    if not outcomes:
        return ["nothing to sync: no recorded experiment was run on a Phoenix dataset"]
    header = ("record", "experiment", "phoenix experiment", "already there", "posted", "failed")
    rows = []
    for o in outcomes:
        if o.skipped:
            target = "skipped"
        else:
            target = (o.experiment_id or "-") + (" (created)" if o.created else "")
        posted = f"{o.posted} run(s)"
        if o.evaluations:
            posted += f", {o.evaluations} evaluation(s)"
        rows.append(
            (o.record_id[:12], o.name, target, f"{o.already} run(s)", posted, str(o.failed))
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [f"sync to Phoenix at {phoenix_url}:"]
    for row in (header, *rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for o in outcomes:
        if o.skipped:
            lines.append(f"{o.name} ({o.record_id[:12]}): skipped: {o.skipped}")
        elif o.error:
            lines.append(f"{o.name} ({o.record_id[:12]}): {o.failed} failed: {o.error}")
    return lines


def settings_from(table: dict[str, Any], timeout: float) -> Settings:
    """The ``[phoenix]`` table's workers, attempts and backoff."""
    return Settings(
        workers=max(1, int(table.get("workers", 8))),
        attempts=max(1, int(table.get("attempts", 8))),
        backoff=float(table.get("backoff", 0.5)),
        timeout=timeout,
    )
