"""What crosses between the client and the workers, and how it is pickled.

Three things travel: an experiment's :class:`~evalwire.unit.Work` (once, see
:mod:`evalwire_dask.worker`), batches of units (client to worker) and batches
of results (worker to client). All go as bytes, so Dask never walks them
looking for futures, and all go through :func:`dumps`: the C pickler when it
can (the common case: JSON-like rows), cloudpickle when it cannot, or when
the data refers to ``__main__`` or to modules the other side cannot import
(experiment modules, which discovery removes from ``sys.modules``). Examples
and evaluations travel as plain tuples: a frozen dataclass with slots pickles
through Python code, ten times slower than a tuple.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import cloudpickle
from evalwire.executor import Unit
from evalwire.models import Evaluation, Example, Run

#: One unit's result as it travels: (index, repetition, output, error,
#: started_at, ended_at, attempts, evaluations); evaluations are tuples of
#: Evaluation's fields (or Evaluation objects, for subclasses).
Row = tuple[int, int, Any, "str | None", float, float, int, tuple[Any, ...]]


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` fast if plain pickle can, else with cloudpickle (functions by value)."""
    try:
        data = pickle.dumps(obj, protocol=5)
    except Exception:  # noqa: BLE001 - anything plain pickle refuses, cloudpickle may take
        pass
    else:
        # What plain pickle sends by reference to __main__ is another module
        # on the other side (Dask applies the same rule).
        if b"__main__" not in data:
            return data
    pickled: bytes = cloudpickle.dumps(obj, protocol=5)
    return pickled


def loads(data: bytes) -> Any:
    return pickle.loads(data)  # cloudpickle's output is plain pickle too


# -- units: client to worker -------------------------------------------------------------


def dump_units(units: Sequence[Unit]) -> bytes:
    if all(type(u.example) is Example for u in units):
        return dumps(
            (
                "rows",
                [
                    (
                        u.index,
                        u.repetition,
                        u.example.id,
                        u.example.input,
                        u.example.expected,
                        u.example.metadata,
                    )
                    for u in units
                ],  # fmt: skip
            )
        )
    return dumps(("units", list(units)))  # a loader's own Example subclass: as it is


def load_units(data: bytes) -> list[Unit]:
    kind, items = loads(data)
    if kind == "units":
        return list(items)
    return [
        Unit(index, Example(id, input, expected, metadata), repetition)
        for index, repetition, id, input, expected, metadata in items
    ]


# -- results: worker to client ----------------------------------------------------------------


def row(run: Run) -> Row:
    """A run without its example (the client has it), evaluations as tuples."""
    return (
        run.index,
        run.repetition,
        run.output,
        run.error,
        run.started_at,
        run.ended_at,
        run.attempts,
        tuple(_evaluation_fields(e) for e in run.evaluations),
    )


def _evaluation_fields(e: Evaluation) -> Any:
    if type(e) is not Evaluation:
        return e
    return (e.name, e.score, e.label, e.explanation, e.metadata, e.error, e.annotator_kind)


def dump_rows(rows: list[Row]) -> bytes:
    """Pickle the rows; an output (or evaluation metadata) that cannot be pickled goes as repr."""
    try:
        return dumps(rows)
    except Exception:  # noqa: BLE001 - find the rows at fault below
        pass
    safe: list[Row] = []
    for item in rows:
        try:
            dumps(item)
        except Exception:  # noqa: BLE001 - any pickling failure
            item = (*item[:2], _picklable(item[2]), *item[3:7], _safe_evaluations(item[7]))
        safe.append(item)
    return dumps(safe)


def _picklable(value: Any) -> Any:
    try:
        dumps(value)
    except Exception:  # noqa: BLE001 - any pickling failure
        return repr(value)
    return value


def _safe_evaluations(evaluations: tuple[Any, ...]) -> tuple[Any, ...]:
    safe = []
    for fields in evaluations:
        if isinstance(fields, Evaluation):  # a subclass: keep what Evaluation knows
            fields = (fields.name, fields.score, fields.label, fields.explanation,
                      fields.metadata, fields.error, fields.annotator_kind)  # fmt: skip
        name, score, label, explanation, metadata, error, kind = fields
        safe.append((name, score, label, explanation, _picklable(metadata), error, kind))
    return tuple(safe)


def load_runs(data: bytes, units: dict[tuple[int, int], Unit]) -> list[Run]:
    """The runs in ``data`` of the units still in ``units`` (removed as they are matched).

    A row whose unit is no longer there was already recorded (a batch that
    ran twice) and is dropped: the dedupe by ``(index, repetition)``.
    """
    runs = []
    for index, repetition, output, error, started, ended, attempts, evaluations in loads(data):
        unit = units.pop((index, repetition), None)
        if unit is None:
            continue
        runs.append(
            Run(
                example=unit.example,
                repetition=repetition,
                output=output,
                error=error,
                started_at=started,
                ended_at=ended,
                attempts=attempts,
                evaluations=tuple(
                    e if isinstance(e, Evaluation) else Evaluation(*e) for e in evaluations
                ),
                index=index,
            )
        )
    return runs
