"""Datasets from Phoenix, by name, with splits and version pinning.

The dataset named ``spec.dataset_name`` is read through the Phoenix client
(``datasets.get_dataset``): the latest version unless one is pinned, only the
examples in the selected splits when splits are given. Each Phoenix example
becomes ``Example(id, input, expected=output, metadata)``, where ``id`` is
Phoenix's public id for it (the id it was uploaded with, else its node id);
the dataset's version is Phoenix's version id.

Phoenix (up to 20.x) serves a version's examples in one response, with no
paging, so the examples are read in one request and held in memory.

Settings, most specific first: ``--dataset-version ID`` and ``--split NAME``
on the command line; ``dataset_version`` and ``splits`` in
``[experiments.NAME]``; the same keys in ``[phoenix]``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire.errors import DatasetError
from evalwire.models import Dataset, Example
from evalwire.phoenix.client import describe, is_transient, status_of

if TYPE_CHECKING:
    from evalwire.config import Config
    from evalwire.models import ExperimentSpec
    from evalwire.phoenix.client import Connection, Phoenix

__all__ = ["RemoteDataset", "load_dataset", "selection"]

_SUFFIXES = (".jsonl", ".csv", ".json")
_ATTEMPTS = 3
_BACKOFF = 0.25


@dataclass(frozen=True)
class RemoteDataset:
    """What the recorder needs to know about a dataset that came from Phoenix.

    ``node_ids`` maps each example's id to the node id Phoenix wants runs
    posted against (the two differ for examples uploaded with their own id).
    """

    id: str
    name: str
    version_id: str
    splits: tuple[str, ...] = ()
    node_ids: Mapping[str, str] = field(default_factory=dict)


def selection(spec: ExperimentSpec, config: Config) -> tuple[str | None, tuple[str, ...]]:
    """The pinned version (or ``None``: the latest) and the splits (``()``: all) for ``spec``."""
    table = config.section("phoenix")
    settings = config.experiment_settings(spec.name)
    version = (
        config.getoption("phoenix_dataset_version")
        or settings.get("dataset_version")
        or table.get("dataset_version")
    )
    splits: Any = (
        config.getoption("phoenix_splits") or settings.get("splits") or table.get("splits")
    )
    if isinstance(splits, str):
        splits = [splits]
    return (str(version) if version else None), tuple(str(s) for s in splits or ())


def load_dataset(spec: ExperimentSpec, config: Config, phoenix: Phoenix) -> Dataset:
    """Load ``spec.dataset_name`` from Phoenix; missing or unreachable: :class:`DatasetError`."""
    name = spec.dataset_name
    version, splits = selection(spec, config)
    connection = phoenix.connection()
    try:
        found = _get(connection, name, version, splits, phoenix.target.timeout)
    except ValueError as exc:  # the client's word for "no dataset by that name"
        if "not found" in str(exc).lower():
            raise DatasetError(_missing(name, spec, config, connection)) from None
        raise DatasetError(f"dataset '{name}' in Phoenix at {connection.url}: {exc}") from None
    except Exception as exc:
        raise DatasetError(_failed(name, version, splits, exc, connection)) from None
    examples: list[Example] = []
    node_ids: dict[str, str] = {}
    for row in found.examples:
        ident = str(row["id"])
        examples.append(
            Example(
                ident,
                dict(row.get("input") or {}),
                dict(row.get("output") or {}),
                dict(row.get("metadata") or {}),
            )
        )
        node_ids[ident] = str(row.get("node_id") or ident)
    dataset = Dataset(
        name,
        examples,
        version=found.version_id,
        size=len(examples),
        source=f"{connection.url}/datasets/{found.id}",
    )
    phoenix.remember(dataset, RemoteDataset(found.id, name, found.version_id, splits, node_ids))
    return dataset


def _get(
    connection: Connection, name: str, version: str | None, splits: tuple[str, ...], timeout: float
) -> Any:
    import time

    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return connection.client.datasets.get_dataset(
                dataset=name, version_id=version, splits=list(splits) or None, timeout=timeout
            )
        except Exception as exc:
            if attempt == _ATTEMPTS or not is_transient(exc):
                raise
        time.sleep(_BACKOFF * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _failed(
    name: str,
    version: str | None,
    splits: tuple[str, ...],
    exc: BaseException,
    connection: Connection,
) -> str:
    status = status_of(exc)
    what = f"dataset '{name}'"
    if status in (404, 422) and (version or splits):
        pinned = [f"version {version}"] if version else []
        pinned += [f"split{'s' if len(splits) > 1 else ''} {', '.join(splits)}"] if splits else []
        return (
            f"cannot load {what} ({' and '.join(pinned)}) from Phoenix: {describe(exc, connection)}"
        )
    return f"cannot load {what}: {describe(exc, connection)}"


# -- a missing dataset --------------------------------------------------------


def _missing(name: str, spec: ExperimentSpec, config: Config, connection: Connection) -> str:
    message = f"dataset '{name}' not found in Phoenix at {connection.url}"
    hint = _upload_hint(name, spec, config)
    if hint:
        return f"{message}; {hint} (or run on local files with --no-phoenix)"
    return f"{message}; upload it with `evalwire upload`"


def _upload_hint(name: str, spec: ExperimentSpec, config: Config) -> str | None:
    """How to upload a local file holding the dataset, if there is one."""
    for path in _local_files(name, spec, config):
        shown = shlex.quote(_display(path))
        if path.suffix == ".jsonl":
            command = f"evalwire upload --jsonl {shown} --dataset {shlex.quote(name)}"
        elif path.suffix == ".csv":
            command = f"evalwire upload --csv {shown} --dataset {shlex.quote(name)}"
        else:
            return (
                f"a local file {_display(path)} holds it: write it as JSONL and "
                "`evalwire upload` it"
            )
        return f"a local file holds it: upload it with `{command}`"
    testset = _testset(name, config)
    if testset is not None:
        return (
            f"the testset {_display(testset)} has rows tagged '{name}': upload them with "
            f"`evalwire upload --csv {shlex.quote(_display(testset))}`"
        )
    return None


def _local_files(name: str, spec: ExperimentSpec, config: Config) -> list[Path]:
    places: list[tuple[Path, str]] = []
    if spec.path is not None:
        places.append((Path(spec.path), "dataset"))
    places.append((config.resolve(config.experiments_dir).parent / "datasets", name))
    found = []
    for folder, stem in places:
        try:
            names = set(os.listdir(folder))
        except OSError:
            continue
        found += [folder / (stem + s) for s in _SUFFIXES if stem + s in names]
    return found


def _testset(name: str, config: Config) -> Path | None:
    """The configured testset CSV, if some row of it is tagged ``name``."""
    import csv

    table = config.section("dataset")
    csv_path = table.get("csv_path")
    if not isinstance(csv_path, str) or not csv_path:
        return None
    path = config.resolve(csv_path)
    tag_column = table.get("tag_column") or "tags"
    delimiter = table.get("delimiter") or "|"
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                cell = row.get(tag_column) or ""
                if any(t.strip() == name for t in cell.split(delimiter)):
                    return path
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
