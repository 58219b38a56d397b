"""``evalwire run --resume``: continue an experiment's latest record.

For each experiment, the store looks at the most recent record of the same
name (a sweep arm, ``qa[model=a]#2``, has its own name, so a sweep resumes
arm by arm; records made by ``evalwire rescore`` are skipped). That record
is continued, whatever its status, when nothing that decides its runs has
changed since it was made:

- the dataset (its name and version; the files loader's version is a hash
  of the content),
- the task and every evaluator (their source hashes, see
  :mod:`evalwire.store.provenance`), and which evaluators there are,
- the params (a sweep's ``seed`` among them),
- the number of runs (``--repetitions``), when both are known.

Continuing keeps the record's id and its runs, and runs only what it lacks:
the (example, repetition) pairs never recorded, and those whose task raised
(a resume after an outage retries them; their old rows are deleted when the
record is reopened). Runs whose evaluators raised are kept: their output is
sound, and ``evalwire rescore`` scores outputs again. A record that lacks
nothing is continued too, and nothing runs: that is how a killed sweep's
finished arms are reported again instead of run again.

A record whose process was killed (``interrupted``, see
:mod:`evalwire.store.writer`) is what ``--resume`` is for: it is continued
like any other. A record still being written by a live process on this host
is not: two processes would record the same runs into it. The experiment
starts afresh instead. A ``running`` record written on another host (or
before writers were noted) cannot be checked, and is continued as before.

When the record cannot be continued (something changed, or it is still
being written), or there is none, one line on stderr says so and the
experiment starts afresh as a new record.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire.models import Resume, Run
from evalwire.store.db import open_store
from evalwire.store.provenance import code_hashes
from evalwire.store.queries import StoredExperiment, StoredRun, iter_runs, latest
from evalwire.store.rows import to_json
from evalwire.store.writer import RUNNING, alive

if TYPE_CHECKING:
    from evalwire.session import Experiment

SHORT_ID = 8


def find(
    experiment: Experiment, path: Path, say: Callable[[str], None] | None = None
) -> Resume | None:
    """The :class:`Resume` of ``experiment``'s latest record in the store at ``path``.

    ``None`` (and one line through ``say``) when there is none or it cannot
    be continued. Reads through a connection of its own: the session's is
    the writer thread's.
    """
    say = say or _stderr
    name = experiment.name
    conn = open_store(path, create=False)
    if conn is None:
        say(f"{name}: nothing to resume (no store at {path}); starting afresh")
        return None
    try:
        stored = latest(conn, name)
        if stored is None:
            say(f"{name}: nothing to resume; starting afresh")
            return None
        reasons = changes(stored, experiment)
        if stored.status == RUNNING and stored.writer is not None and alive(stored.writer):
            # Two processes recording into one record would each run what it lacks.
            reasons.insert(0, f"it is still being recorded by {stored.writer.describe()}")
        if reasons:
            say(
                f"{name}: not resuming {stored.id[:SHORT_ID]}: {'; '.join(reasons)}; "
                "starting afresh"
            )
            return None
        previous, failed = kept_runs(iter_runs(conn, stored.id))
    finally:
        conn.close()
    if experiment.config.verbosity >= 0:
        say(f"{name}: {_progress(stored, len(previous), failed, experiment.result.total)}")
    return Resume(stored.id, tuple(previous), started_at=stored.started_at)


def changes(stored: StoredExperiment, experiment: Experiment) -> list[str]:
    """Why ``stored`` cannot be continued by ``experiment`` (empty when it can)."""
    result = experiment.result
    reasons: list[str] = []
    if stored.dataset != result.dataset:
        reasons.append(f"the dataset changed ({stored.dataset} → {result.dataset})")
    elif stored.dataset_version != result.dataset_version:
        reasons.append(
            f"the dataset changed (version {_short(stored.dataset_version)} → "
            f"{_short(result.dataset_version)})"
        )
    elif stored.total is not None and result.total is not None and stored.total != result.total:
        # The same examples: only --repetitions changes how many units there are.
        reasons.append(f"the repetitions changed ({stored.total} → {result.total} runs)")
    task_hash, evaluator_hashes = code_hashes(experiment.spec)
    if stored.task_hash != task_hash:
        reasons.append("the task changed")
    if stored.evaluator_hashes != evaluator_hashes:
        reasons.append(
            f"the evaluators changed ({_diff(stored.evaluator_hashes, evaluator_hashes)})"
        )
    if stored.params != _jsonable(result.params):
        reasons.append("the params changed")
    return reasons


def kept_runs(stored_runs: Iterable[StoredRun]) -> tuple[list[Run], int]:
    """The runs a resume keeps (one per (example, repetition), task without error),
    and how many it drops because their task raised."""
    kept: list[Run] = []
    seen: set[tuple[str, int]] = set()
    failed = 0
    for stored in stored_runs:
        if stored.error is not None:
            failed += 1
            continue
        key = (stored.example_id, stored.repetition)
        if key not in seen:
            seen.add(key)
            kept.append(stored.to_run())
    return kept, failed


def _progress(stored: StoredExperiment, kept: int, failed: int, total: int | None) -> str:
    short = stored.id[:SHORT_ID]
    if total is not None and kept >= total:
        return f"{short} is complete ({kept} runs recorded); nothing to run"
    retry = f" (retrying {failed} whose task failed)" if failed else ""
    if total is None:
        return f"resuming {short}: {kept} runs recorded{retry}"
    return f"resuming {short}: {kept} of {total} runs recorded, {total - kept} to run{retry}"


def _diff(before: dict[str, str | None], after: dict[str, str | None]) -> str:
    parts = [f"{n} edited" for n in after if n in before and before[n] != after[n]]
    parts += [f"{n} added" for n in after if n not in before]
    parts += [f"{n} removed" for n in before if n not in after]
    return ", ".join(parts)


def _short(version: str | None) -> str:
    if version is None:
        return "none"
    return version if len(version) <= 12 else version[:12] + "…"


def _jsonable(value: dict[str, Any]) -> Any:
    # Params were stored as JSON: compare like with like (a tuple is a list).
    return json.loads(to_json(value))


def _stderr(message: str) -> None:
    sys.stderr.write(f"evalwire: {message}\n")
    sys.stderr.flush()
