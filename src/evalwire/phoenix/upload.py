"""``evalwire upload`` and ``evalwire validate``: a testset into Phoenix datasets.

Each dataset the testset names is uploaded with one request. What happens to
a dataset Phoenix already has is ``--on-exist``'s choice:

``skip`` (default)
    leave it as it is;
``append``
    add the rows Phoenix does not have (rows it has, by id, are updated);
``overwrite``
    make the file's rows the dataset's new version. Earlier versions stay, and
    so do the experiments run on them. Only with ``--force`` is the dataset
    deleted and created afresh, after saying what that deletes (its versions
    and experiments).

The summary says, dataset by dataset, what was created, appended, replaced
or skipped. Settings not given on the command line come from ``[dataset]``
in ``evalwire.toml`` (``csv_path``, ``input_keys``, ``output_keys``,
``metadata_keys``, ``tag_column``, ``split_column``, ``delimiter``,
``on_exist``), as upstream evalwire read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from evalwire.errors import DatasetError, UsageError
from evalwire.phoenix.testset import Layout, Row, Testset

if TYPE_CHECKING:
    from evalwire.config import Config
    from evalwire.phoenix.client import Connection

__all__ = ["Outcome", "layout", "source", "upload", "validation_report"]

ON_EXIST = ("skip", "append", "overwrite")
Echo = Callable[[str], None]


# -- settings -----------------------------------------------------------------


def source(config: Config, csv_path: str | None, jsonl_path: str | None) -> tuple[Path, str]:
    """The file to read and its kind: ``--csv``, ``--jsonl``, else ``[dataset] csv_path``."""
    if csv_path and jsonl_path:
        raise UsageError("give --csv or --jsonl, not both")
    if csv_path:
        return Path(csv_path).expanduser(), "csv"
    if jsonl_path:
        return Path(jsonl_path).expanduser(), "jsonl"
    configured = config.section("dataset").get("csv_path")
    if isinstance(configured, str) and configured:
        path = config.resolve(configured)
        return path, "jsonl" if path.suffix == ".jsonl" else "csv"
    raise UsageError("no testset given: use --csv PATH or --jsonl PATH, or set [dataset] csv_path")


def layout(
    config: Config,
    *,
    input_keys: str | None = None,
    output_keys: str | None = None,
    metadata_keys: str | None = None,
    tag_column: str | None = None,
    split_column: str | None = None,
    delimiter: str | None = None,
    dataset: str | None = None,
) -> Layout:
    """How to read: the command line (keys comma-separated), else ``[dataset]``, else defaults."""
    table = config.section("dataset")
    return Layout(
        input_keys=_keys(input_keys, table, "input_keys"),
        output_keys=_keys(output_keys, table, "output_keys"),
        metadata_keys=_keys(metadata_keys, table, "metadata_keys"),
        tag_column=tag_column or _text(table, "tag_column") or "tags",
        split_column=split_column or _text(table, "split_column"),
        delimiter=delimiter or _text(table, "delimiter") or "|",
        dataset=dataset or None,
    )


def on_exist_setting(config: Config, given: str | None) -> str:
    value = given or config.section("dataset").get("on_exist") or "skip"
    if value not in ON_EXIST:
        raise UsageError(f"[dataset] on_exist must be one of {', '.join(ON_EXIST)}, not {value!r}")
    return str(value)


def _keys(given: str | None, table: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value: Any = given if given is not None else table.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [k.strip() for k in value.split(",")]
    if not (isinstance(value, list) and all(isinstance(k, str) and k for k in value) and value):
        where = f"--{key.replace('_', '-')}" if given is not None else f"[dataset] {key}"
        raise UsageError(f"{where} must name one or more columns, not {value!r}")
    return tuple(value)


def _text(table: dict[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not (isinstance(value, str) and value):
        raise UsageError(f"[dataset] {key} must be a non-empty string, not {value!r}")
    return value


def validation_report(testset: Testset) -> tuple[list[str], int]:
    """The lines ``evalwire validate`` prints, and its exit status (0 valid, 1 problems)."""
    lines = [str(p) for p in testset.problems]
    if testset.problems:
        lines.append(f"{len(testset.problems)} problem(s) in {testset.path}")
        return lines, 1
    groups = testset.datasets()
    shown = ", ".join(f"{name} ({len(rows)})" for name, rows in groups.items())
    lines.append(
        f"{testset.path} is valid: {len(testset.rows)} row(s) in {len(groups)} dataset(s)"
        + (f": {shown}" if shown else "")
    )
    return lines, 0


# -- uploading ------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What happened to one dataset: ``action`` is created, appended, replaced,
    unchanged, skipped or failed."""

    dataset: str
    action: str
    text: str


def upload(
    testset: Testset,
    connection: Connection,
    on_exist: str,
    *,
    force: bool = False,
    echo: Echo = print,
) -> list[Outcome]:
    """Upload every dataset of ``testset``; each outcome is echoed as it happens.

    A server that cannot be reached stops the upload (:class:`DatasetError`);
    a dataset the server refuses is a ``failed`` outcome and the others go on.
    """
    api = _Api(connection)
    outcomes = []
    for name, rows in testset.datasets().items():
        try:
            outcome = _upload_one(api, name, rows, on_exist, force, echo)
        except _Refused as exc:
            outcome = Outcome(name, "failed", f"failed to upload dataset '{name}': {exc}")
        echo(outcome.text)
        outcomes.append(outcome)
    return outcomes


def summary(outcomes: list[Outcome], connection: Connection) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
    order = ("created", "appended", "replaced", "unchanged", "skipped", "failed")
    parts = [f"{counts[a]} {a}" for a in order if counts.get(a)]
    return f"Phoenix at {connection.url}: {len(outcomes)} dataset(s): {', '.join(parts)}"


def _upload_one(
    api: _Api, name: str, rows: list[Row], on_exist: str, force: bool, echo: Echo
) -> Outcome:
    existing = api.find(name)
    if existing is None:
        api.post("create", name, rows)
        return Outcome(name, "created", f"created dataset '{name}': {_count(rows)}")
    held = int(existing.get("example_count") or 0)
    if on_exist == "skip":
        return Outcome(
            name,
            "skipped",
            f"skipped dataset '{name}': Phoenix already has it ({held} example(s)); "
            "use --on-exist append or overwrite to change it",
        )
    if on_exist == "append":
        answer = api.post("append", name, rows)
        created, updated = answer["num_created_examples"], answer["num_updated_examples"]
        if not created and not updated:
            return Outcome(
                name, "unchanged", f"dataset '{name}' already holds these {_count(rows)}"
            )
        return Outcome(
            name,
            "appended",
            f"appended to dataset '{name}': {created} new, {updated} updated "
            f"(now {held + created} example(s))",
        )
    experiments = api.experiments(existing["id"])
    if force:
        versions = api.versions(existing["id"])
        echo(
            f"deleting dataset '{name}' (--force): its {held} example(s), {versions} "
            f"version(s) and {len(experiments)} experiment(s)"
            + (f" ({', '.join(_names(experiments))})" if experiments else "")
            + " are deleted for good"
        )
        api.delete(existing["id"])
        api.post("create", name, rows)
        return Outcome(name, "created", f"created dataset '{name}' afresh: {_count(rows)}")
    answer = api.post("update", name, rows)
    created = answer["num_created_examples"]
    updated = answer["num_updated_examples"]
    deleted = answer["num_deleted_examples"]
    if not (created or updated or deleted):
        return Outcome(name, "unchanged", f"dataset '{name}' is unchanged ({_count(rows)})")
    kept = (
        f"; earlier versions and their {len(experiments)} experiment(s) are kept"
        if experiments
        else "; earlier versions are kept"
    )
    return Outcome(
        name,
        "replaced",
        f"replaced dataset '{name}' with a new version: {created} new, {updated} updated, "
        f"{deleted} removed (now {len(rows)} example(s)){kept}",
    )


def _count(rows: list[Row]) -> str:
    return f"{len(rows)} example(s)"


def _names(experiments: list[dict[str, Any]], limit: int = 5) -> list[str]:
    names = [str(e.get("name") or e.get("id")) for e in experiments[:limit]]
    if len(experiments) > limit:
        names.append(f"and {len(experiments) - limit} more")
    return names


class _Refused(Exception):
    """The server answered, but not with what was asked for."""


class _Api:
    """The few REST calls an upload needs, on the HTTP client evalwire built."""

    def __init__(self, connection: Connection) -> None:
        if connection.http is None:  # pragma: no cover - upload always builds its own
            raise UsageError("uploading needs a Phoenix connection evalwire made itself")
        self.connection = connection
        self.http = connection.http

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        import httpx

        from evalwire.phoenix.client import describe

        try:
            response = self.http.request(method, url, **kwargs)
            response.raise_for_status()
        except httpx.TransportError as exc:
            raise DatasetError(describe(exc, self.connection)) from None
        except httpx.HTTPStatusError as exc:
            raise _Refused(describe(exc, self.connection)) from None
        return response.json() if response.content else None

    def find(self, name: str) -> dict[str, Any] | None:
        found = self._call("GET", "v1/datasets", params={"name": name, "limit": 2})["data"]
        return found[0] if found else None

    def post(self, action: str, name: str, rows: list[Row]) -> dict[str, Any]:
        from evalwire.phoenix.recorder import to_json

        payload: dict[str, Any] = {
            "action": action,
            "name": name,
            "inputs": [to_json(r.example.input) for r in rows],
            "outputs": [to_json(r.example.expected) for r in rows],
            "metadata": [to_json(r.example.metadata) for r in rows],
            "example_ids": [r.example.id for r in rows],
        }
        if any(r.splits for r in rows):
            payload["splits"] = [list(r.splits) or None for r in rows]
        answer: dict[str, Any] = self._call(
            "POST", "v1/datasets/upload", params={"sync": "true"}, json=payload
        )["data"]
        return answer

    def experiments(self, dataset_id: str) -> list[dict[str, Any]]:
        return self._pages(f"v1/datasets/{quote(dataset_id)}/experiments")

    def versions(self, dataset_id: str) -> int:
        return len(self._pages(f"v1/datasets/{quote(dataset_id)}/versions"))

    def delete(self, dataset_id: str) -> None:
        self._call("DELETE", f"v1/datasets/{quote(dataset_id)}")

    def _pages(self, url: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = self._call("GET", url, params=params)
            items.extend(page.get("data") or [])
            cursor = page.get("next_cursor")
            if not cursor:
                return items
