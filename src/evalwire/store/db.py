"""Opening a store: check the file is ours, migrate its schema, tune the connection.

A store is a SQLite database holding an ``evalwire_meta`` table whose
``format`` row says ``evalwire-store``; ``PRAGMA user_version`` is its schema
version. Anything else at the store's path (a corrupted file, another
program's database) is refused with a message naming the file, and is never
written to: the checks run before the first write.

Schema changes are functions in :data:`MIGRATIONS`; version ``n`` is reached
by running the ``n``-th. Adding version 2 means appending one function.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evalwire.errors import UsageError
from evalwire.store import DEFAULT_FILE, DEFAULT_FOLDER

if TYPE_CHECKING:
    from evalwire.config import Config

#: How long one statement waits for another process's write lock.
BUSY_TIMEOUT = 30.0
#: After a busy timeout still ends in "database is locked", retry this often.
LOCK_RETRIES = 5
FORMAT = "evalwire-store"
_SQLITE_MAGIC = b"SQLite format 3\x00"


# -- schema ------------------------------------------------------------------


def _v1(conn: sqlite3.Connection) -> None:
    """The first schema: experiments, runs, evaluations (JSON text for dicts)."""
    for statement in (
        """CREATE TABLE evalwire_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE experiments (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            experiment_name TEXT NOT NULL,
            dataset TEXT NOT NULL,
            dataset_version TEXT,
            task_hash TEXT,
            evaluator_hashes TEXT NOT NULL DEFAULT '{}',
            params TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            git_commit TEXT,
            started_at REAL NOT NULL,
            ended_at REAL,
            status TEXT NOT NULL,
            error TEXT,
            total INTEGER,
            completed INTEGER,
            task_errors INTEGER,
            scores TEXT
        )""",
        "CREATE INDEX experiments_by_start ON experiments (started_at)",
        "CREATE INDEX experiments_by_name ON experiments (name, started_at)",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            experiment_id TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
            example_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            repetition INTEGER NOT NULL,
            input TEXT NOT NULL,
            expected TEXT NOT NULL,
            metadata TEXT NOT NULL,
            output TEXT,
            error TEXT,
            attempts INTEGER NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL NOT NULL
        )""",
        "CREATE INDEX runs_by_experiment ON runs (experiment_id, idx, repetition)",
        """CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            score REAL,
            label TEXT,
            explanation TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            annotator_kind TEXT NOT NULL
        )""",
        "CREATE INDEX evaluations_by_run ON evaluations (run_id)",
    ):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO evalwire_meta (key, value) VALUES ('format', ?), ('created_at', ?)",
        (FORMAT, repr(time.time())),
    )


def _v2(conn: sqlite3.Connection) -> None:
    """``experiments.extra``: what plugins noted about a record (JSON), such as the
    Phoenix dataset and experiment it was posted to, for ``evalwire sync``."""
    conn.execute("ALTER TABLE experiments ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'")


def _v3(conn: sqlite3.Connection) -> None:
    """``runs.trace_id``: the trace of the run's task span, when a tracer was on, so
    ``evalwire sync`` links a run it posts later to the trace already in Phoenix."""
    conn.execute("ALTER TABLE runs ADD COLUMN trace_id TEXT")


def _v4(conn: sqlite3.Connection) -> None:
    """``experiments.writer``: the process that started or reopened the record (JSON,
    see :mod:`evalwire.store.writer`), so readers can tell a record whose process
    was killed (``interrupted``) from one still being written (``running``)."""
    conn.execute("ALTER TABLE experiments ADD COLUMN writer TEXT")


#: Schema migrations, in order; ``MIGRATIONS[n - 1]`` takes a store to version ``n``.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4]
SCHEMA_VERSION = len(MIGRATIONS)


# -- locations ---------------------------------------------------------------


def default_path(root: Path) -> Path:
    """Where a project's store lives: ``ROOT/.evalwire/evalwire.db``."""
    return root / DEFAULT_FOLDER / DEFAULT_FILE


def store_location(
    config: Config, given: str | Path | None = None, *, reading: bool = False
) -> Path | None:
    """The store a session records to or a command reads, or ``None`` if disabled.

    In order: ``given`` (a command's ``--store``) or the ``--store`` option
    of ``evalwire run``, both relative to the current folder; then the config
    file's ``store = "PATH"`` (relative to the project root; ``store = false``
    turns recording off); then ``.evalwire/evalwire.db`` in the project root.
    ``--no-store`` (or ``no_store = true``) turns recording off. When
    ``reading`` (the commands that read a store), switches that turn
    recording off are ignored: there may be a store from before.
    """
    if given is None:
        if config.getoption("no_store") and not reading:
            return None
        given = config.options.get("store_path")
    if given is not None:
        return Path(given).expanduser().resolve()
    setting = config.settings.get("store", config.settings.get("store_path"))
    if setting is False:
        return default_path(config.root) if reading else None
    if isinstance(setting, str) and setting:
        return config.resolve(setting)
    if setting not in (None, True):
        raise UsageError(f"{config.config_path}: 'store' must be a path or false, not {setting!r}")
    return default_path(config.root)


def prepare_folder(path: Path) -> None:
    """Create the store's folder; ``.evalwire/`` also gets a ``.gitignore`` of ``*``.

    The ``.gitignore`` keeps the store (and itself) out of the user's commits
    without touching the project's own ``.gitignore``.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ignore = folder / ".gitignore"
        if folder.name == DEFAULT_FOLDER and not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot create the store's folder {folder}: {exc.strerror or exc} "
            "(choose another place with --store PATH, or --no-store)"
        ) from None


# -- opening -----------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    version: int
    tables: frozenset[str]
    format: str | None


def open_store(path: Path, *, create: bool) -> sqlite3.Connection | None:
    """Open the store at ``path``, migrated to :data:`SCHEMA_VERSION`.

    With ``create`` a missing file becomes a new store (its folder made with
    :func:`prepare_folder`); without it a missing file returns ``None``.
    Anything that is not an evalwire store, or one written by a newer
    evalwire, raises :class:`UsageError` naming the file, untouched.

    The connection is in autocommit mode (use :func:`transaction`), may be
    handed to another thread, and is in WAL mode with ``synchronous=NORMAL``:
    a committed transaction survives the process being killed (only a power
    cut can lose the last commits), and readers never block the writer.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            return None
        prepare_folder(path)
    _check_header(path)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open the store {path}: {exc}") from None
    try:
        _ensure_schema(conn, path)
        _tune(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_locked(exc):
            raise UsageError(
                f"the store {path} stayed locked by another process for {BUSY_TIMEOUT:g} s: {exc}"
            ) from None
        raise _not_a_store(path, f"SQLite cannot read it ({exc})") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _check_header(path: Path) -> None:
    # Checked by hand because SQLite would happily turn a zero-length or
    # missing file into a database, and reports garbage only on first read.
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return  # a new store
    except OSError as exc:
        raise UsageError(f"cannot read the store {path}: {exc.strerror or exc}") from None
    if head and head != _SQLITE_MAGIC:
        raise _not_a_store(path, "it is not a SQLite database")


def _not_a_store(path: Path, why: str) -> UsageError:
    return UsageError(
        f"{path} is not an evalwire store: {why}. It was left untouched; move it "
        "away, or record elsewhere with --store PATH (or not at all with --no-store)"
    )


def _inspect(conn: sqlite3.Connection) -> _State:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = frozenset(
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    )
    fmt = None
    if "evalwire_meta" in tables:
        row = conn.execute("SELECT value FROM evalwire_meta WHERE key = 'format'").fetchone()
        fmt = row[0] if row else None
    return _State(version, tables, fmt)


def _verdict(state: _State, path: Path) -> str:
    """``"new"``, ``"current"`` or ``"old"``; raises for anything that is not ours."""
    if not state.tables and state.version == 0:
        return "new"  # an empty database file: nothing to lose
    if "evalwire_meta" not in state.tables or state.format != FORMAT or state.version == 0:
        tables = ", ".join(sorted(state.tables)[:5]) or "none"
        raise _not_a_store(path, f"it is another program's database (tables: {tables})")
    if state.version > SCHEMA_VERSION:
        raise UsageError(
            f"the store {path} has schema version {state.version}, written by a newer "
            f"evalwire; this one knows versions up to {SCHEMA_VERSION}. Upgrade evalwire "
            "(the store was left untouched)"
        )
    return "current" if state.version == SCHEMA_VERSION else "old"


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    if _verdict(_inspect(conn), path) == "current":
        return
    # Another process may be creating or migrating the same file: decide
    # again under the write lock, so only one of us does it.
    with transaction(conn):
        state = _inspect(conn)
        _verdict(state, path)
        for version in range(state.version, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _tune(conn: sqlite3.Connection) -> None:
    for _ in range(LOCK_RETRIES):
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() == "wal":
            break
        # Switching to WAL needs a moment alone with the file; another
        # process may be holding it. Rollback-journal mode still works.
        time.sleep(0.05)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


# -- transactions ------------------------------------------------------------


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "another connection holds the lock"."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, taken at once (``BEGIN IMMEDIATE``), committed on success.

    Taking the write lock up front means a busy store makes us wait in
    ``BEGIN`` (under the busy timeout) instead of failing half-way; a wait
    that still ends in "database is locked" is retried a few times.
    """
    for attempt in range(LOCK_RETRIES + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or attempt == LOCK_RETRIES:
                raise
            time.sleep(0.1 * (attempt + 1))
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def retrying(action: Callable[[], None], retries: int = LOCK_RETRIES) -> None:
    """Run ``action`` (a whole transaction), again if it ends in "database is locked"."""
    for attempt in range(retries + 1):
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or attempt == retries:
                raise
            time.sleep(0.1 * (attempt + 1))
