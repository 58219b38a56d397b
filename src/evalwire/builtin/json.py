"""The ``json`` reporter: ``--json PATH`` writes every experiment, run and evaluation.

The document is written once, when the session ends, atomically (see
:mod:`evalwire.builtin._files`), so a reader never sees half of it::

    {"evalwire_version": "...", "started_at": ..., "finished_at": ...,
     "exit_status": 0,
     "experiments": [{...ExperimentResult.to_dict()..., "runs": [...]}]}

Runs are listed in ``(index, repetition)`` order, whatever order they
completed in. Outputs JSON cannot hold are written as their ``repr``.

(This module is ``evalwire.builtin.json``; ``import json`` below is absolute,
so it is the standard library's.)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from evalwire.builtin._files import atomic_file, cannot_write, target
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    from evalwire.config import OptionParser
    from evalwire.models import ExperimentResult, Run
    from evalwire.session import Experiment, Session

NAME = "json"
OPTION = "json_path"
_WHAT = "JSON results"  # as in "cannot write JSON results to PATH"


@dataclass(eq=False)
class _Collector:
    """Where the document goes, and every run heard so far, by experiment id."""

    path: Path
    started_at: float
    runs: dict[str, list[Run]] = field(default_factory=dict)


# -- hooks -------------------------------------------------------------------


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    import click

    parser.addoption(
        "--json",
        OPTION,
        type=click.Path(dir_okay=False),
        default=None,
        metavar="PATH",
        help="Write every experiment, run and evaluation to PATH as one JSON document.",
    )


@hookimpl
def evalwire_session_start(session: Session) -> None:
    config = session.config
    config.stash.pop(NAME, None)
    try:
        path = target(config, OPTION)
    except Exception as exc:  # a path that cannot even be spelled: say so at the end
        config.stash[NAME] = exc
        return
    if path is not None:
        config.stash[NAME] = _Collector(path, session.started_at or time.time())


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    collector = experiment.config.stash.get(NAME)
    if isinstance(collector, _Collector):
        # Keep the Run itself (cheap: this hook runs once per unit of work);
        # it becomes a dict only when the document is written.
        experiment.stash[NAME] = collector.runs.setdefault(experiment.id, [])


@hookimpl
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    runs = experiment.stash.get(NAME)
    if runs is not None:
        runs.append(run)


@hookimpl
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    collector = session.config.stash.pop(NAME, None)
    if collector is None:
        return None
    if not isinstance(collector, _Collector):  # the path was unusable from the start
        return cannot_write(_WHAT, session.config.getoption(OPTION), collector)
    try:
        document = _document(collector, results, exitstatus)
        document["sweeps"] = [summary.to_dict() for summary in session.sweep_summaries]
        write_json(collector.path, document)
    except Exception as exc:
        return cannot_write(_WHAT, collector.path, exc)
    return None


# -- the document ------------------------------------------------------------


def _document(
    collector: _Collector, results: list[ExperimentResult], exitstatus: int
) -> dict[str, Any]:
    experiments = []
    for result in results:
        runs = sorted(collector.runs.get(result.id, ()), key=_run_order)
        experiments.append(result.to_dict(runs=runs))
    return {
        "evalwire_version": _version(),
        "started_at": collector.started_at,
        "finished_at": time.time(),
        "exit_status": exitstatus,
        "experiments": experiments,
    }


def _run_order(run: Run) -> tuple[int, int]:
    return run.index, run.repetition


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evalwire")
    except PackageNotFoundError:
        return "unknown"


def write_json(path: Path, document: Any) -> None:
    """Write ``document`` to ``path`` atomically, creating missing folders.

    Values JSON cannot hold become their ``repr``; keys it cannot hold, strings,
    and non-finite numbers (``null``), so the file is strict JSON.
    """
    with atomic_file(path) as fh:
        try:
            _dump(document, fh)
        except (TypeError, ValueError):  # odd keys, NaN, cycles: take the slow road
            fh.seek(0)
            fh.truncate()
            _dump(_plain(document), fh)


def _dump(document: Any, fh: IO[str]) -> None:
    json.dump(document, fh, default=repr, allow_nan=False)
    fh.write("\n")


_SCALARS = (str, int, bool, type(None))


def _plain(value: Any, seen: frozenset[int] = frozenset()) -> Any:
    """``value`` with every part JSON can hold as is, the rest as strings or ``None``."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dict, list, tuple)) and id(value) in seen:
        return "<cycle>"
    if isinstance(value, dict):
        inner = seen | {id(value)}
        return {k if isinstance(k, str) else _key(k): _plain(v, inner) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        inner = seen | {id(value)}
        return [_plain(v, inner) for v in value]
    return repr(value)


def _key(key: Any) -> str:
    if isinstance(key, (int, float, bool)) or key is None:
        return json.dumps(key)
    return repr(key)
