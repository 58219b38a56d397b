"""The ``files`` loader: datasets from local files, needing no server.

The dataset named ``spec.dataset_name`` is the first of:

1. ``dataset.jsonl``, ``dataset.csv`` or ``dataset.json`` in the experiment's
   own folder (``spec.path``);
2. ``datasets/NAME.jsonl``, ``.csv`` or ``.json`` beside the experiments folder;
3. the rows of the testset CSV named by ``[dataset] csv_path`` whose tag
   column names the dataset (upstream evalwire's ``upload`` format).

Names match exactly, case-sensitively, even on a case-insensitive file
system. When none holds the dataset the hook returns ``None``, so another
loader may answer; :func:`describe_search` says where this one looked.

Formats
-------
JSONL
    One Phoenix-shaped object per line: ``{"id"?, "input": {...}, "expected"
    or "output": {...}, "metadata"?: {...}}``. Blank lines are skipped. The file
    streams: it is read each time the examples are iterated, so a malformed
    line is reported when iteration reaches it.
JSON
    A list of such objects, or ``{"examples": [...], "version"?: ...}``.
CSV
    Cells are kept as the strings written (an empty cell is ``""``). The input
    is the ``[dataset] input_keys`` columns if configured, else ``user_query``
    if there is such a column (upstream's format), else the first column other
    than ``id``. The expected output is the ``[dataset] output_keys`` columns if
    configured, else the first of ``expected_output``, ``expected``, ``output``
    that is a column (and not an input). An ``id`` column is the example's id;
    every other column is metadata. A dataset CSV streams like JSONL.
Testset CSV
    Laid out as a CSV, with inputs defaulting to ``user_query``. Its
    ``[dataset] tag_column`` (default ``tags``) is split on ``[dataset]
    delimiter`` (default ``|``; it splits that column only) and each part,
    stripped, names a dataset the row belongs to. The tag column is not
    metadata.

A dataset's version is its own ``version`` (JSON) or a hash of the content it
came from: the file, or for a testset the rows routed to it, so editing another
dataset's rows leaves it unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire.errors import DatasetError
from evalwire.models import Dataset
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from evalwire.config import Config
    from evalwire.models import ExperimentSpec

__all__ = ["describe_search", "evalwire_load_dataset"]

_SUFFIXES = (".jsonl", ".csv", ".json")
_MAX_TAGS_SHOWN = 20


@hookimpl(trylast=True)
def evalwire_load_dataset(spec: ExperimentSpec, config: Config) -> Dataset | None:
    """Load ``spec.dataset_name`` from local files, or ``None`` if no file holds it."""
    name = spec.dataset_name
    settings = _Settings.read(config)
    for folder, stem in _places(spec, config):
        path = _find(folder, stem)
        if path is not None:
            return _load_file(name, path, settings)
    if settings.csv_path is not None:
        return _load_testset(name, settings)
    return None


@hookimpl(specname="evalwire_describe_search")
def describe_search(spec: ExperimentSpec, config: Config) -> str:
    """Where :func:`evalwire_load_dataset` looked for the dataset, one place a line.

    Meant for the message that says a dataset was not found; it never raises.
    """
    name = spec.dataset_name
    lines = [f"looked for dataset '{name}' in:"]
    for folder, stem in _places(spec, config):
        lines.append(f"  {folder / stem}.{{jsonl,csv,json}}")
    try:
        settings = _Settings.read(config)
    except DatasetError as exc:
        lines.append(f"  no testset CSV: {exc}")
        return "\n".join(lines)
    if settings.csv_path is None:
        lines.append("  no testset CSV (none configured as [dataset] csv_path)")
    else:
        lines.append(f"  {settings.csv_path}: {_describe_testset(name, settings)}")
    return "\n".join(lines)


# -- where to look ------------------------------------------------------------


def _places(spec: ExperimentSpec, config: Config) -> list[tuple[Path, str]]:
    """The (folder, file stem) pairs to look in, in order."""
    places = []
    if spec.path is not None:
        places.append((Path(spec.path), "dataset"))
    datasets = config.resolve(config.experiments_dir).parent / "datasets"
    places.append((datasets, spec.dataset_name))
    return places


def _find(folder: Path, stem: str) -> Path | None:
    # Compare against the folder's listing rather than asking the file system,
    # which on macOS and Windows would find "Foo.jsonl" for "foo".
    try:
        names = set(os.listdir(folder))
    except OSError:
        return None
    for suffix in _SUFFIXES:
        candidate = folder / (stem + suffix)
        if candidate.name in names and candidate.is_file():
            return candidate
    return None


# -- the [dataset] table --------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    csv_path: Path | None
    input_keys: tuple[str, ...] | None
    output_keys: tuple[str, ...] | None
    tag_column: str
    delimiter: str

    @classmethod
    def read(cls, config: Config) -> _Settings:
        table = config.section("dataset")
        csv_path = table.get("csv_path")
        if csv_path is not None and not (isinstance(csv_path, str) and csv_path):
            raise _bad_setting("csv_path", "a path", csv_path)
        return cls(
            csv_path=config.resolve(csv_path) if csv_path else None,
            input_keys=_keys(table, "input_keys"),
            output_keys=_keys(table, "output_keys"),
            tag_column=_text(table, "tag_column", "tags"),
            delimiter=_text(table, "delimiter", "|"),
        )


def _keys(table: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        raise _bad_setting(key, "a non-empty list of column names", value)
    return tuple(value)


def _text(table: dict[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not (isinstance(value, str) and value):
        raise _bad_setting(key, "a non-empty string", value)
    return value


def _bad_setting(key: str, wanted: str, value: object) -> DatasetError:
    return DatasetError(f"config [dataset] {key} must be {wanted}, not {value!r}")


# -- loading ------------------------------------------------------------------
# The readers (evalwire.builtin._rows) are imported when a dataset is read: this
# plugin loads for every command, `evalwire --help` included.


def _load_file(name: str, path: Path, settings: _Settings) -> Dataset:
    from evalwire.builtin._rows import JsonlExamples, load_json, scan_lines

    if path.suffix == ".jsonl":
        version, size = scan_lines(path)
        return Dataset(name, JsonlExamples(path), version, size, str(path))
    if path.suffix == ".json":
        examples, own_version, digest = load_json(path)
        return Dataset(name, examples, own_version or digest, len(examples), str(path))
    return _load_csv(name, path, settings)


def _load_csv(name: str, path: Path, settings: _Settings) -> Dataset:
    # One pass now, to report a broken header or record before anything runs
    # and to count the examples; the examples themselves are read when iterated.
    from evalwire.builtin._rows import CsvExamples, CsvLayout, csv_records, scan_lines

    version, _ = scan_lines(path)
    records = csv_records(path)
    first = next(records, None)
    header = first[1] if first else []
    layout = (
        CsvLayout.plain(header, path, settings.input_keys, settings.output_keys)
        if header
        else CsvLayout((), (), ())
    )
    size = sum(1 for _ in records)
    return Dataset(name, CsvExamples(path, layout), version, size, str(path))


def _load_testset(name: str, settings: _Settings) -> Dataset | None:
    import hashlib
    import json

    from evalwire.builtin._rows import CsvLayout, TestsetExamples, csv_records

    path = settings.csv_path
    assert path is not None
    if not path.is_file():
        raise DatasetError(f"testset CSV {path} (configured as [dataset] csv_path) does not exist")
    records = csv_records(path)
    first = next(records, None)
    if first is None:
        return None
    header = first[1]
    layout = CsvLayout.testset(
        header, path, settings.input_keys, settings.output_keys, settings.tag_column
    )
    digest = hashlib.sha1(json.dumps(header).encode())
    size = 0
    for _, row in records:
        if layout.tagged(row, name, settings.delimiter):
            size += 1
            digest.update(json.dumps(row).encode())
    if not size:
        return None
    examples = TestsetExamples(path, layout, name, settings.delimiter)
    return Dataset(name, examples, digest.hexdigest()[:12], size, str(path))


def _describe_testset(name: str, settings: _Settings) -> str:
    path = settings.csv_path
    assert path is not None
    if not path.is_file():
        return "does not exist"
    where = f"no row tagged '{name}' in column '{settings.tag_column}'"
    try:
        tags = _tags(path, settings)
    except DatasetError as exc:
        return f"{where} ({exc})"
    if not tags:
        return where
    shown = ", ".join(tags[:_MAX_TAGS_SHOWN])
    more = f" and {len(tags) - _MAX_TAGS_SHOWN} more" if len(tags) > _MAX_TAGS_SHOWN else ""
    return f"{where}; its datasets are {shown}{more}"


def _tags(path: Path, settings: _Settings) -> Sequence[str]:
    from evalwire.builtin._rows import csv_records

    records = csv_records(path)
    first = next(records, None)
    if first is None:
        return []
    header = first[1]
    if settings.tag_column not in header:
        raise DatasetError(f"it has no column '{settings.tag_column}'")
    index = header.index(settings.tag_column)
    found: set[str] = set()
    for _, row in records:
        found.update(t.strip() for t in row[index].split(settings.delimiter))
    found.discard("")
    return sorted(found)
