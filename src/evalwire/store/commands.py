"""``evalwire history``, ``show``, ``compare``, ``export`` and ``rescore``: the store's commands.

Every command reads the store at ``--store PATH``, else the one ``evalwire
run`` records to (``store = "PATH"`` in the config file, else
``.evalwire/evalwire.db`` in the project root, found as ``evalwire run``
finds it). An empty or missing store is not an error: the command says so
and exits 0. An unknown or ambiguous experiment id exits 2.

Experiments are named by full id, unique id prefix, ``last`` or ``last~N``
(see :mod:`evalwire.store.queries` for how ``last`` picks a name). In
``compare``, a ``last`` beside an explicit id means the last of that id's
experiment name. ``rescore`` is the one that writes: it records a new
experiment (see :mod:`evalwire.store.rescore`).

A record whose process died before it finished shows as ``interrupted``
(see :mod:`evalwire.store.writer`); ``compare`` notes on stderr when a side
is interrupted or still running, since it holds only some of its runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from evalwire.cli import experiments_option, plugin_option

if TYPE_CHECKING:
    import sqlite3

F = TypeVar("F", bound=Callable[..., Any])


def _store_option(fn: F) -> F:
    return click.option(
        "--store",
        "store",
        metavar="PATH",
        help="Store to read (default: .evalwire/evalwire.db in the project root).",
    )(fn)


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def _name_option(fn: F) -> F:
    return click.option("--name", metavar="NAME", help="Experiment name that `last` refers to.")(fn)


@contextmanager
def _opened(store: str | None) -> Iterator[tuple[sqlite3.Connection | None, Path]]:
    """The store's connection (``None`` when there is no store yet) and its path."""
    from evalwire.config import build_config
    from evalwire.store.db import open_store, store_location

    path = store_location(build_config({}), store, reading=True)
    assert path is not None  # reading never turns the store off
    conn = open_store(path, create=False)
    try:
        yield conn, path
    finally:
        if conn is not None:
            conn.close()


def _empty(conn: sqlite3.Connection | None, path: Path) -> bool:
    """Say so, and answer True, when there is nothing to read."""
    if conn is None or conn.execute("SELECT 1 FROM experiments LIMIT 1").fetchone() is None:
        click.echo(f"No experiments recorded yet (store: {path}).")
        return True
    return False


@click.command("history")
@click.option("--name", metavar="NAME", help="Only experiments called NAME.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="At most N experiments (0: all).",
)
@_json_option
@_store_option
@plugin_option
def history(name: str | None, limit: int, as_json: bool, store: str | None) -> None:
    """Recorded experiments, newest first: status, errors, time, mean scores."""
    from evalwire.store import queries, render

    with _opened(store) as (conn, path):
        if _empty(conn, path):
            if as_json:
                click.echo("[]")
            return
        assert conn is not None
        found = queries.list_experiments(conn, name=name, limit=limit or None)
        if as_json:
            click.echo(json.dumps([e.to_dict() for e in found], indent=2, default=str))
        elif not found:
            click.echo(f"No experiments named '{name}' recorded (store: {path}).")
        else:
            for line in render.history(found):
                click.echo(line)


@click.command("show")
@click.argument("experiment_id", metavar="ID")
@click.option(
    "--failures",
    is_flag=True,
    help="Only runs with a task error, an evaluation error or a score below 1.",
)
@_name_option
@_json_option
@_store_option
@plugin_option
def show(
    experiment_id: str, failures: bool, name: str | None, as_json: bool, store: str | None
) -> None:
    """One experiment with its runs and evaluations.

    ID is a full id, a unique prefix of one, `last` or `last~N` (the N-th
    before the last; with several experiment names, give --name).
    """
    from evalwire.store import queries, render

    with _opened(store) as (conn, path):
        if _empty(conn, path):
            return
        assert conn is not None
        experiment = queries.resolve(conn, experiment_id, name=name, where=f"the store {path}")
        runs = [r for r in queries.iter_runs(conn, experiment.id) if r.failed or not failures]
        if as_json:
            click.echo(
                json.dumps(
                    {"experiment": experiment.to_dict(), "runs": [r.to_dict() for r in runs]},
                    indent=2,
                    default=str,
                )
            )
            return
        for line in render.header(experiment):
            click.echo(line)
        click.echo("")
        if not runs:
            click.echo("No failing runs." if failures else "No runs recorded.")
            return
        evaluators = list(dict.fromkeys(e.name for r in runs for e in r.evaluations))
        for line in render.runs(runs, evaluators, details=failures):
            click.echo(line)


@click.command("compare")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap resampling."
)
@_name_option
@_json_option
@_store_option
@plugin_option
def compare(a: str, b: str, seed: int, name: str | None, as_json: bool, store: str | None) -> None:
    """Compare experiment B with A: per evaluator, B - A with a 95% bootstrap CI,
    then the examples that regressed and improved (worst first).

    A and B are ids, unique id prefixes, `last` or `last~N`; beside an id,
    `last` means the last experiment of that id's name. Runs are matched by
    (example id, repetition), so experiments on different dataset versions
    compare on the examples they share; the rest are counted as unmatched.
    """
    from evalwire.store import queries, render
    from evalwire.store.compare import compare as compare_runs

    with _opened(store) as (conn, path):
        if _empty(conn, path):
            return
        assert conn is not None
        where = f"the store {path}"
        refs = {"a": a, "b": b}
        found: dict[str, queries.StoredExperiment] = {}
        # Explicit ids first: a `last` beside one means the last of its name.
        for side in sorted(refs, key=lambda s: refs[s].strip().startswith("last")):
            scope = name
            if scope is None and found:
                scope = next(iter(found.values())).name
            found[side] = queries.resolve(conn, refs[side], name=scope, where=where)
        first, second = found["a"], found["b"]
        result = compare_runs(
            queries.run_scores(conn, first.id), queries.run_scores(conn, second.id), seed=seed
        )
        if as_json:
            click.echo(
                json.dumps(
                    {"a": first.to_dict(), "b": second.to_dict(), "seed": seed, **result.to_dict()},
                    indent=2,
                    default=str,
                )
            )
            return
        for label, record in (("A", first), ("B", second)):
            note = render.unfinished(label, record)
            if note:
                click.echo(note, err=True)
        if first.name != second.name:
            click.echo(
                f"note: comparing experiments of different names "
                f"('{first.name}' and '{second.name}')",
                err=True,
            )
        for line in render.comparison(first, second, result):
            click.echo(line)


@click.command("export")
@click.argument("experiment_id", metavar="ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"]),
    help="Output format (default: from --output's suffix, else jsonl).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output).",
)
@_name_option
@_store_option
@plugin_option
def export(
    experiment_id: str,
    fmt: str | None,
    output: Path | None,
    name: str | None,
    store: str | None,
) -> None:
    """One row per run of an experiment, with its evaluations, as CSV, JSON or JSON Lines.

    ID is a full id, a unique prefix of one, `last` or `last~N`. CSV has the
    columns eval.NAME.score, eval.NAME.label, eval.NAME.explanation and
    eval.NAME.error for each evaluator.
    """
    from evalwire.errors import UsageError
    from evalwire.store import export as exporter
    from evalwire.store import queries

    if fmt is None:
        suffix = output.suffix.lstrip(".").lower() if output else ""
        fmt = suffix if suffix in exporter.FORMATS else "jsonl"
    with _opened(store) as (conn, path):
        if _empty(conn, path):
            return
        assert conn is not None
        experiment = queries.resolve(conn, experiment_id, name=name, where=f"the store {path}")
        if output is None:
            exporter.write(conn, experiment, fmt, sys.stdout)
            return
        try:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = exporter.write(conn, experiment, fmt, out)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
        click.echo(f"exported {count} run(s) of {experiment.id[:8]} to {output}", err=True)


@click.command("rescore")
@click.argument("experiment_id", metavar="ID")
@experiments_option
@click.option(
    "--name",
    metavar="NAME",
    help="Score with the evaluators of experiment NAME (default: the record's own "
    "experiment); also the name `last` refers to.",
)
@click.option("--config", "config_path", metavar="PATH", help="Config file to read.")
@click.option(
    "--store",
    "store",
    metavar="PATH",
    help="Store to read and record to (default: .evalwire/evalwire.db in the project root).",
)
@click.option("-q", "--quiet", count=True, help="Less output.")
@click.option("-v", "--verbose", count=True, help="More output.")
@click.option(
    "-p",
    "--plugin",
    "plugin_args",
    multiple=True,
    metavar="NAME",
    help="Load plugin module NAME, or block plugin NAME with no:NAME.",
)
def rescore(
    experiment_id: str,
    experiments_dir: str | None,
    name: str | None,
    config_path: str | None,
    store: str | None,
    quiet: int,
    verbose: int,
    plugin_args: tuple[str, ...],
) -> None:
    """Score a recorded experiment's outputs again with the current evaluators.

    The task is not called: each run's recorded output (or task error) is
    scored by the evaluators the experiment's folder holds now. The scores
    are recorded as a new experiment, linked to ID by its metadata
    (`rescored_from`); compare the two with `evalwire compare ID NEW`.
    ID is a full id, a unique prefix of one, `last` or `last~N`.
    """
    from evalwire.store.render import SHORT_ID
    from evalwire.store.rescore import rescore as rescore_record

    done = rescore_record(
        experiment_id,
        store=store,
        experiments_dir=experiments_dir,
        name=name,
        config_path=config_path,
        plugin_args=plugin_args,
        verbosity=verbose - quiet,
    )
    old, new = done.original.id[:SHORT_ID], done.result.id[:SHORT_ID]
    where = f" --store {store}" if store else ""
    click.echo(
        f"rescored {old} ({done.original.name}) as {new}: {done.result.completed} run(s), "
        "the task not called"
    )
    click.echo(f"compare them: evalwire compare {old} {new}{where}")
    if done.exitstatus:
        sys.exit(done.exitstatus)


def register(cli: click.Group) -> None:
    """Add the store's commands to the ``evalwire`` group."""
    for command in (history, show, compare, export, rescore):
        cli.add_command(command)
