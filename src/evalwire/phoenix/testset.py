"""Reading a testset to upload: CSV or JSONL rows, routed to datasets, with every problem.

A row becomes an :class:`~evalwire.models.Example` exactly as the ``files``
loader would make it from the same file (same input, expected output,
metadata and id), so a dataset run locally and the same dataset uploaded to
Phoenix have the same example ids.

CSV
    Cells are kept as the strings written. The input is ``--input-keys``
    (default ``user_query``; with ``--dataset``, as for a dataset file:
    ``user_query`` if there is such a column, else the first column); the
    expected output is ``--output-keys`` (default: the first of
    ``expected_output``, ``expected``, ``output``). An ``id`` column is the
    example's id. Without ``--dataset``, the tag column (``tags``) is split on
    the delimiter (``|``) and each part names a dataset the row goes to. The
    split column, if given, is split the same way into Phoenix split names.
    The delimiter applies to those two columns only. Every other column is
    metadata, or only the ``--metadata-keys`` columns when given.
JSONL
    One ``{"id"?, "input", "expected"|"output", "metadata"?, "splits"?}`` object
    a line. Rows go to ``--dataset``, else to the datasets named in their
    metadata's tag key (a list, or a string split on the delimiter).

Problems are collected, never raised, each with its line: a row with the
wrong number of fields or bad JSON, an empty input, an empty expected
output, a row no dataset claims, a duplicate (same id, or same input and
expected output, in the same dataset), an unknown column. Rows that cannot be
uploaded (unreadable, claimed by no dataset, duplicates) are left out.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalwire.builtin._rows import example_id, from_object
from evalwire.errors import DatasetError, UsageError
from evalwire.models import Example

__all__ = ["Layout", "Problem", "Row", "Testset", "read"]

_OUTPUT_COLUMNS = ("expected_output", "expected", "output")
_JSONL_KEYS = {"id", "input", "expected", "output", "metadata", "splits"}


@dataclass(frozen=True)
class Layout:
    """How to read a testset: which columns go where, and how rows find their datasets."""

    input_keys: tuple[str, ...] | None = None
    output_keys: tuple[str, ...] | None = None
    metadata_keys: tuple[str, ...] | None = None
    tag_column: str = "tags"
    split_column: str | None = None
    delimiter: str = "|"
    dataset: str | None = None


@dataclass(frozen=True)
class Problem:
    """Something wrong with the testset; ``line`` is ``None`` for the file as a whole."""

    path: Path
    line: int | None
    message: str
    fatal: bool = False  # the file cannot be read into examples at all

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Row:
    """One example to upload, the datasets it goes to and its Phoenix splits."""

    line: int
    example: Example
    datasets: tuple[str, ...]
    splits: tuple[str, ...] = ()
    own_id: bool = False  # the id was written in the file, not derived from the content


@dataclass
class Testset:
    """A testset read: the rows to upload and every problem found."""

    path: Path
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        return any(p.fatal for p in self.problems)

    def datasets(self) -> dict[str, list[Row]]:
        """Rows by dataset, datasets in order of first appearance."""
        groups: dict[str, list[Row]] = {}
        for row in self.rows:
            for name in row.datasets:
                groups.setdefault(name, []).append(row)
        return groups

    def problem(self, line: int | None, message: str, *, fatal: bool = False) -> None:
        self.problems.append(Problem(self.path, line, message, fatal))


def read(path: Path, kind: str, layout: Layout) -> Testset:
    """Read ``path`` (``kind`` is ``"csv"`` or ``"jsonl"``); a missing file is a UsageError."""
    if not path.is_file():
        raise UsageError(f"{kind.upper()} file {path} does not exist")
    testset = Testset(path)
    try:
        if kind == "csv":
            _read_csv(testset, layout)
        else:
            _read_jsonl(testset, layout)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        testset.problem(None, f"not valid UTF-8 ({exc.reason})", fatal=True)
    _drop_duplicates(testset)
    testset.problems.sort(key=lambda p: -1 if p.line is None else p.line)
    return testset


def split_cell(cell: Any, delimiter: str) -> tuple[str, ...]:
    """A tag or split cell as names: a list as is, a string split on ``delimiter``."""
    if cell is None:
        return ()
    parts = cell if isinstance(cell, list) else str(cell).split(delimiter)
    names: list[str] = []
    for part in parts:
        name = str(part).strip()
        if name and name not in names:
            names.append(name)
    return tuple(names)


# -- CSV ----------------------------------------------------------------------


def _records(path: Path) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(line, fields, None) per non-empty record, or (line, None, error) where reading broke."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, None, f"bad CSV: {exc}"
                return
            if row:
                yield line, row, None
            line = reader.line_num + 1


def _read_csv(testset: Testset, layout: Layout) -> None:
    records = _records(testset.path)
    first = next(records, None)
    if first is None or first[1] is None:
        testset.problem(1, (first[2] if first else None) or "the file is empty", fatal=True)
        return
    header = first[1]
    columns = _Columns.plan(testset, header, layout)
    if columns is None:
        return
    for line, fields, error in records:
        if fields is None:  # the rest of the file cannot be read
            testset.problem(line, f"{error}; the rows after it are not read", fatal=True)
            return
        if len(fields) != len(header):
            testset.problem(line, f"{len(fields)} fields where the header has {len(header)}")
            continue
        columns.row(testset, line, fields, layout)


@dataclass(frozen=True)
class _Columns:
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[tuple[str, int], ...]
    metadata: tuple[tuple[str, int], ...]
    id_index: int | None
    tag_index: int | None
    split_index: int | None

    @classmethod
    def plan(cls, testset: Testset, header: Sequence[str], layout: Layout) -> _Columns | None:
        """Which column goes where; ``None`` (after noting why) if the header cannot be used."""
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            if name in index:
                testset.problem(1, f"column '{name}' appears twice in the header", fatal=True)
                return None
            index[name] = i
        listed = ", ".join(repr(h) for h in header)
        input_keys = layout.input_keys
        if input_keys is None:
            if layout.dataset is None or "user_query" in index:
                input_keys = ("user_query",)
            else:
                input_keys = tuple(h for h in header if h != "id")[:1] or tuple(header[:1])
        output_keys = layout.output_keys
        if output_keys is None:
            found = [n for n in _OUTPUT_COLUMNS if n in index and n not in input_keys]
            output_keys = tuple(found[:1])
            if not output_keys:
                testset.problem(
                    None,
                    "no expected-output column (expected_output, expected or output); "
                    "name it with --output-keys",
                )
        tag_column = layout.tag_column if layout.dataset is None else None
        wanted = [(input_keys, "input"), (output_keys, "expected output")]
        if tag_column is not None:
            wanted.append(((tag_column,), "tags (or give --dataset NAME)"))
        if layout.split_column is not None:
            wanted.append(((layout.split_column,), "splits"))
        if layout.metadata_keys is not None:
            wanted.append((layout.metadata_keys, "metadata"))
        usable = True
        for names, what in wanted:
            missing = [n for n in names if n not in index]
            if missing:
                usable = False
                testset.problem(
                    1,
                    f"no column {', '.join(repr(n) for n in missing)} for the {what}; "
                    f"the header has {listed}",
                    fatal=True,
                )
        if not usable:
            return None
        used = {index[n] for n in (*input_keys, *output_keys)}
        tag_index = index[tag_column] if tag_column is not None else None
        split_index = index[layout.split_column] if layout.split_column is not None else None
        used |= {i for i in (tag_index, split_index) if i is not None}
        id_index = index.get("id")
        if id_index in used:
            id_index = None
        if id_index is not None:
            used.add(id_index)
        rest = [(n, i) for n, i in index.items() if i not in used]
        if layout.metadata_keys is not None:
            keep = set(layout.metadata_keys)
            for name, _ in rest:
                if name not in keep:
                    testset.problem(
                        None,
                        f"unknown column '{name}' (not an input, output or metadata key); "
                        "it is not uploaded",
                    )
            rest = [(n, i) for n, i in rest if n in keep]
        return cls(
            tuple((n, index[n]) for n in input_keys),
            tuple((n, index[n]) for n in output_keys),
            tuple(rest),
            id_index,
            tag_index,
            split_index,
        )

    def row(self, testset: Testset, line: int, fields: list[str], layout: Layout) -> None:
        input = {n: fields[i] for n, i in self.inputs}
        expected = {n: fields[i] for n, i in self.outputs}
        metadata = {n: fields[i] for n, i in self.metadata}
        for name, value in input.items():
            if not value.strip():
                testset.problem(line, f"empty input '{name}'")
        for name, value in expected.items():
            if not value.strip():
                testset.problem(line, f"empty expected output '{name}'")
        ident = fields[self.id_index] if self.id_index is not None else ""
        example = Example(ident or example_id(input, expected), input, expected, metadata)
        if layout.dataset is not None:
            datasets: tuple[str, ...] = (layout.dataset,)
        else:
            assert self.tag_index is not None
            datasets = split_cell(fields[self.tag_index], layout.delimiter)
            if not datasets:
                testset.problem(line, f"empty tag in column '{layout.tag_column}': no dataset")
                return
        splits = (
            split_cell(fields[self.split_index], layout.delimiter)
            if self.split_index is not None
            else ()
        )
        testset.rows.append(Row(line, example, datasets, splits, bool(ident)))


# -- JSONL --------------------------------------------------------------------


def _read_jsonl(testset: Testset, layout: Layout) -> None:
    path = testset.path
    source = str(path)
    with path.open(encoding="utf-8-sig") as fh:
        for line, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                testset.problem(line, f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            except RecursionError:
                testset.problem(line, "JSON nested too deeply")
                continue
            try:
                example = from_object(obj, source, line)
            except DatasetError as exc:
                testset.problem(line, str(exc).removeprefix(f"{source}:{line}: "))
                continue
            _jsonl_row(testset, line, obj, example, layout)


def _jsonl_row(
    testset: Testset, line: int, obj: dict[str, Any], example: Example, layout: Layout
) -> None:
    for key in sorted(set(obj) - _JSONL_KEYS):
        testset.problem(line, f"unknown key '{key}' (not uploaded)")
    if not example.input:
        testset.problem(line, "empty input")
    if not example.expected:
        testset.problem(line, "no expected output ('expected' or 'output')")
    metadata = dict(example.metadata)
    if layout.dataset is not None:
        datasets: tuple[str, ...] = (layout.dataset,)
    else:
        datasets = split_cell(metadata.pop(layout.tag_column, None), layout.delimiter)
        if not datasets:
            testset.problem(
                line,
                f"no dataset: give --dataset NAME, or name datasets in metadata "
                f"'{layout.tag_column}'",
            )
            return
    splits = split_cell(obj.get("splits"), layout.delimiter)
    if layout.split_column is not None:
        splits += tuple(
            s
            for s in split_cell(metadata.pop(layout.split_column, None), layout.delimiter)
            if s not in splits
        )
    if layout.metadata_keys is not None:
        metadata = {k: v for k, v in metadata.items() if k in layout.metadata_keys}
    example = Example(example.id, example.input, example.expected, metadata)
    own_id = obj.get("id") not in (None, "")
    testset.rows.append(Row(line, example, datasets, splits, own_id))


# -- duplicates ---------------------------------------------------------------


def _drop_duplicates(testset: Testset) -> None:
    """Keep the first row with a given example id in each dataset; note the others."""
    seen: dict[tuple[str, str], Row] = {}
    kept: list[Row] = []
    for row in testset.rows:
        datasets = []
        for name in row.datasets:
            first = seen.get((name, row.example.id))
            if first is None:
                seen[(name, row.example.id)] = row
                datasets.append(name)
                continue
            same = f"same id '{row.example.id}'" if row.own_id else "same input and expected output"
            testset.problem(
                row.line, f"duplicate of line {first.line} in dataset '{name}' ({same})"
            )
        if datasets:
            kept.append(Row(row.line, row.example, tuple(datasets), row.splits, row.own_id))
    testset.rows = kept
