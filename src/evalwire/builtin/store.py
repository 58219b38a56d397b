"""The ``store`` plugin: records every experiment, run and evaluation in SQLite.

The store is ``.evalwire/evalwire.db`` in the project root unless
``--store PATH`` (or ``store = "PATH"`` in the config file) says otherwise;
``--no-store`` (or ``store = false``) turns it off, and a dry run records
nothing. The file is opened and checked when the session is configured, so a
store that cannot be used stops the session (exit 2) before anything runs.
Runs are written by a writer thread as they complete (see
:mod:`evalwire.store.records` for what survives a kill). The subcommands
``history``, ``show``, ``compare`` and ``export`` read the store back.

The work lives in :mod:`evalwire.store`; this module only wires it to hooks.
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING, Any

from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    import click

    from evalwire.config import Config, OptionParser
    from evalwire.models import ExperimentResult, Run
    from evalwire.session import Experiment, Session
    from evalwire.store.records import Recorder

_KEY = "evalwire.store"


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


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    recording: _Recording | None = experiment.config.stash.get(_KEY)
    if recording is None or recording.recorder is None:
        return
    from evalwire.store.rows import experiment_row

    recorder = recording.recorder
    recorder.start_experiment(experiment_row(experiment, recording.git_commit))
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
        import sys

        sys.stderr.write(
            f"evalwire: error: {lost} run(s) could not be recorded in the store {recording.path}\n"
        )
        return 1
    return None
