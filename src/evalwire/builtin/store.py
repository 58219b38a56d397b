"""The ``store`` plugin: records every experiment, run and evaluation in SQLite.

The store is ``.evalwire/evalwire.db`` in the project root unless
``--store PATH`` (or ``store = "PATH"`` in the config file) says otherwise;
``--no-store`` (or ``store = false``) turns it off, and a dry run records
nothing. The file is opened and checked when the session is configured, so a
store that cannot be used stops the session (exit 2) before anything runs.
Runs are written by a writer thread as they complete (see
:mod:`evalwire.store.records` for what survives a kill, and
:mod:`evalwire.store.writer` for how a killed record reads as
``interrupted``). With ``--resume`` the store continues each experiment's
latest record when its dataset and code are unchanged (see
:mod:`evalwire.store.resume`). The subcommands
``history``, ``show``, ``compare`` and ``export`` read the store back, and
``rescore`` scores a record's outputs again with the current evaluators.

The work lives in :mod:`evalwire.store`; this module only wires it to hooks.
"""

from __future__ import annotations

import atexit
import sys
from typing import TYPE_CHECKING, Any

from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    import click

    from evalwire.config import Config, OptionParser
    from evalwire.models import ExperimentResult, Resume, Run
    from evalwire.session import Experiment, Session
    from evalwire.store.records import Recorder

_KEY = "evalwire.store"
#: ``config.stash`` key: the task hash to record instead of the task's own
#: (``evalwire rescore`` replays stored outputs: the task that made them is
#: the original's).
TASK_HASH_KEY = "evalwire.store.task_hash"


class _Recording:
    """One session's store: where it is, its connection, and later its writer."""

    def __init__(self, path: Any, conn: Any) -> None:
        self.path = path
        self.conn = conn
        self.recorder: Recorder | None = None
        self.git_commit: str | None = None


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--store",
        dest="store_path",
        default=None,
        metavar="PATH",
        help="Record to this SQLite store (default: .evalwire/evalwire.db in the project root).",
    )
    parser.addoption(
        "--no-store",
        dest="no_store",
        is_flag=True,
        default=None,
        help="Record nothing in the store.",
    )


@hookimpl
def evalwire_register_commands(cli: click.Group) -> None:
    from evalwire.store.commands import register

    register(cli)


@hookimpl
def evalwire_configure(config: Config) -> None:
    if config.dry_run_size is not None:
        return  # a dry run records nothing, anywhere
    from evalwire.store.db import open_store, store_location

    path = store_location(config)
    if path is None:
        return
    conn = open_store(path, create=True)
    config.stash[_KEY] = _Recording(path, conn)


@hookimpl
def evalwire_session_start(session: Session) -> None:
    recording: _Recording | None = session.config.stash.get(_KEY)
    if recording is None:
        return
    from evalwire.store.provenance import git_commit
    from evalwire.store.records import Recorder

    recording.git_commit = git_commit(session.config.root)
    recording.recorder = Recorder(recording.conn, recording.path)
    # A session that dies of a bug never reaches session_finish: still commit
    # what was heard before the interpreter exits.
    atexit.register(recording.recorder.close)


@hookimpl(trylast=True)
def evalwire_resume(experiment: Experiment, config: Config) -> Resume | None:
    name = experiment.name
    recording: _Recording | None = config.stash.get(_KEY)
    if recording is None:
        _say(f"{name}: not resuming: the store is off (--no-store, store = false or a dry run)")
        return None
    import sqlite3

    from evalwire.errors import UsageError
    from evalwire.store.resume import find

    try:
        return find(experiment, recording.path, _say)
    except (sqlite3.Error, UsageError) as exc:
        _say(f"{name}: not resuming: cannot read the store {recording.path}: {exc}")
        return None


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    recording: _Recording | None = experiment.config.stash.get(_KEY)
    if recording is None or recording.recorder is None:
        return
    from evalwire.store.rows import experiment_row

    recorder = recording.recorder
    row = experiment_row(experiment, recording.git_commit)
    if TASK_HASH_KEY in experiment.config.stash:
        row = _with_column(row, "task_hash", experiment.config.stash[TASK_HASH_KEY])
    resumed = experiment.resumed
    if resumed is None:
        recorder.start_experiment(row)
    else:
        result = experiment.result
        recorder.reopen_experiment(
            row,
            resumed.done,
            total=result.total,
            dataset_version=result.dataset_version,
            git_commit=recording.git_commit,
        )
    experiment.stash[_KEY] = recorder.add_run


@hookimpl
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    add_run = experiment.stash.get(_KEY)
    if add_run is not None:
        add_run(experiment.result.id, run)


@hookimpl
def evalwire_experiment_finish(experiment: Experiment, result: ExperimentResult) -> None:
    recording: _Recording | None = experiment.config.stash.get(_KEY)
    if recording is not None and recording.recorder is not None:
        recording.recorder.finish_experiment(result)


def _with_column(row: tuple[Any, ...], column: str, value: Any) -> tuple[Any, ...]:
    """``row`` (an ``experiments`` row to insert) with ``column`` set to ``value``."""
    from evalwire.store.rows import INSERT_EXPERIMENT

    listed = INSERT_EXPERIMENT.split("(", 1)[1].split(")", 1)[0]
    columns = [c.strip() for c in listed.split(",")]
    position = columns.index(column)
    return (*row[:position], value, *row[position + 1 :])


def _say(message: str) -> None:
    sys.stderr.write(f"evalwire: {message}\n")
    sys.stderr.flush()


@hookimpl
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    recording: _Recording | None = session.config.stash.pop(_KEY, None)
    if recording is None:
        return None
    if recording.recorder is None:
        recording.conn.close()
        return None
    atexit.unregister(recording.recorder.close)
    lost = recording.recorder.close()
    if lost:
        sys.stderr.write(
            f"evalwire: error: {lost} run(s) could not be recorded in the store {recording.path}\n"
        )
        return 1
    return None
