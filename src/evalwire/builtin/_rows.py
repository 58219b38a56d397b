"""Dataset files read into :class:`Example` rows: JSONL, JSON and CSV.

JSONL and CSV stream: their ``examples`` objects open the file afresh on every
``iter()`` and yield one example at a time, so a file larger than memory is
never held in it, and a malformed row surfaces (as a :class:`DatasetError`
naming the file and line) only when iteration reaches it. A JSON file is one
document, so it is parsed whole when loaded.

An example's id is the row's ``id`` when it has a non-empty one, else a hash of
its input and expected output, so a row keeps its id across dataset versions
that keep it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from json.scanner import make_scanner
from pathlib import Path
from typing import Any

from evalwire.errors import DatasetError
from evalwire.models import Example

__all__ = [
    "CsvExamples",
    "CsvLayout",
    "JsonlExamples",
    "TestsetExamples",
    "csv_records",
    "example_id",
    "from_object",
    "load_json",
    "scan_lines",
]

_CHUNK = 1 << 20
_JSON_SPACE = " \t\r\n"
# A blank line inside a run of whole lines: a newline, JSON whitespace, the next newline.
_BLANK_LINE = re.compile(rb"\n[ \t\r]*(?=\n)")
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
# json.loads spends about as long checking its arguments and the text around
# the value as it does parsing a short row; the scanner alone parses. Rows it
# does not take cleanly go through json.loads, so what is accepted is the same.
_scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed wants a duck
_CLEAN_ENDS = frozenset(("\n", "\r\n", ""))


def example_id(input: dict[str, Any], expected: dict[str, Any]) -> str:
    """A stable id for a row without one: a hash of its canonical input and expected."""
    text = _canonical({"input": input, "expected": expected})
    return "ex-" + hashlib.sha1(text.encode("ascii")).hexdigest()[:12]


def _malformed(path: str, where: int | str, what: str) -> DatasetError:
    place = f"{path}:{where}" if isinstance(where, int) else f"{path}: {where}"
    return DatasetError(f"{place}: {what}")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


# -- JSON objects -------------------------------------------------------------


def from_object(obj: Any, path: str, where: int | str) -> Example:
    """One Phoenix-shaped row ``{"id"?, "input", "expected"|"output", "metadata"?}``.

    ``where`` is the line number (or a description such as ``"example 3"``)
    named when the row is malformed. A non-object input is wrapped as
    ``{"input": value}``, a non-object expected as ``{"expected_output": value}``;
    a null or missing expected is ``{}``.
    """
    if type(obj) is not dict:
        raise _malformed(path, where, f"expected a JSON object, found {_kind(obj)}")
    try:
        input = obj["input"]
    except KeyError:
        raise _malformed(path, where, "row has no 'input' key") from None
    if type(input) is not dict:
        input = {"input": input}
    expected = obj.get("expected")
    if expected is None:
        expected = obj.get("output")
    if expected is None:
        expected = {}
    elif type(expected) is not dict:
        expected = {"expected_output": expected}
    metadata = obj.get("metadata")
    if metadata is None:
        metadata = {}
    elif type(metadata) is not dict:
        raise _malformed(path, where, f"'metadata' must be an object, not {_kind(metadata)}")
    ident = obj.get("id")
    if ident is None or ident == "":
        ident = example_id(input, expected)
    elif type(ident) is not str:
        ident = str(ident)
    return Example(ident, input, expected, metadata)


class JsonlExamples:
    """The examples of a JSONL file, read lazily each time they are iterated."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"JsonlExamples({str(self.path)!r})"

    def __iter__(self) -> Iterator[Example]:
        path = self.path
        source = str(path)
        scan = _scan
        clean_ends = _CLEAN_ENDS
        line_no = 0
        try:
            # newline="\n": split lines exactly where scan_lines counts them.
            with path.open(encoding="utf-8-sig", newline="\n") as fh:
                for line_no, line in enumerate(fh, 1):
                    try:
                        obj, end = scan(line, 0)
                        if line[end:] not in clean_ends:
                            raise StopIteration
                    except (StopIteration, ValueError, RecursionError):
                        if not line.strip(_JSON_SPACE):
                            continue
                        obj = _loads(line, source, line_no)
                    yield from_object(obj, source, line_no)
        except OSError as exc:
            raise DatasetError(f"cannot read dataset {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise _malformed(
                source, line_no + 1, f"not valid UTF-8 at or after this line ({exc.reason})"
            ) from None


def _loads(line: str, path: str, line_no: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise _malformed(path, line_no, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _malformed(path, line_no, "JSON nested too deeply") from None


def scan_lines(path: Path, chunk_size: int = _CHUNK) -> tuple[str, int]:
    """The file's content hash and its number of non-blank lines, in one streaming pass.

    Blank means JSON whitespace only, as in :class:`JsonlExamples`. No JSON is
    parsed, so counting a large file costs about as much as reading it.
    """
    digest = hashlib.sha1()
    lines = 0
    partial_blank = True  # the line begun in an earlier chunk holds only whitespace
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(chunk_size):
                digest.update(chunk)
                first = chunk.find(b"\n")
                if first < 0:
                    partial_blank = partial_blank and not chunk.strip(b" \t\r")
                    continue
                if not (partial_blank and not chunk[:first].strip(b" \t\r")):
                    lines += 1
                last = chunk.rfind(b"\n")
                whole = chunk[first : last + 1]  # newline, whole lines, newline
                lines += whole.count(b"\n") - 1 - len(_BLANK_LINE.findall(whole))
                partial_blank = not chunk[last + 1 :].strip(b" \t\r")
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc.strerror or exc}") from None
    if not partial_blank:
        lines += 1
    return digest.hexdigest()[:12], lines


def load_json(path: Path) -> tuple[list[Example], str | None, str]:
    """A JSON file's examples, its own ``version`` if it names one, and its content hash.

    The file holds a list of rows, or an object ``{"examples": [...], "version"?}``.
    """
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _malformed(source, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise DatasetError(f"{path}: JSON nested too deeply") from None
    version = None
    if isinstance(data, dict) and isinstance(data.get("examples"), list):
        if data.get("version") is not None:
            version = str(data["version"])
        rows = data["examples"]
    elif isinstance(data, list):
        rows = data
    else:
        raise DatasetError(
            f"{path}: expected a list of examples or an object with an 'examples' list"
        )
    examples = [from_object(row, source, f"example {i}") for i, row in enumerate(rows, 1)]
    return examples, version, hashlib.sha1(raw).hexdigest()[:12]


# -- CSV ----------------------------------------------------------------------


def csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Every non-empty record with the line it starts on, the header first.

    Cells are strings exactly as written. A quoting error or a record whose
    number of fields differs from the header's is a :class:`DatasetError`
    naming the line.
    """
    line = 1
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            width = -1
            try:
                for row in reader:
                    if row:
                        if width < 0:
                            width = len(row)
                        elif len(row) != width:
                            raise _malformed(
                                str(path),
                                line,
                                f"{len(row)} field{'s' if len(row) != 1 else ''} "
                                f"where the header has {width}",
                            )
                        yield line, row
                    line = reader.line_num + 1
            except csv.Error as exc:
                raise _malformed(str(path), line, f"bad CSV: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise _malformed(
            str(path), line, f"not valid UTF-8 at or after this line ({exc.reason})"
        ) from None


@dataclass(frozen=True)
class CsvLayout:
    """Which column of a CSV goes where in an :class:`Example`.

    Each entry pairs a column's name with its position. Columns that are not
    input, expected, id or tag become metadata.
    """

    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[tuple[str, int], ...]
    metadata: tuple[tuple[str, int], ...]
    id_index: int | None = None
    tag_index: int | None = None

    @classmethod
    def plain(
        cls,
        header: Sequence[str],
        path: Path,
        input_keys: Sequence[str] | None,
        output_keys: Sequence[str] | None,
    ) -> CsvLayout:
        """A dataset CSV's layout: configured inputs, else ``user_query``, else column 1.

        Column 1 means the first column other than ``id``.
        """
        if input_keys is None:
            if "user_query" in header:
                input_keys = ["user_query"]
            else:
                input_keys = [h for h in header if h != "id"][:1] or header[:1]
        return cls._build(header, path, input_keys, output_keys, None)

    @classmethod
    def testset(
        cls,
        header: Sequence[str],
        path: Path,
        input_keys: Sequence[str] | None,
        output_keys: Sequence[str] | None,
        tag_column: str,
    ) -> CsvLayout:
        """A testset CSV's layout: inputs default to ``user_query``; the tag column routes."""
        return cls._build(header, path, input_keys or ["user_query"], output_keys, tag_column)

    @classmethod
    def _build(
        cls,
        header: Sequence[str],
        path: Path,
        input_keys: Sequence[str],
        output_keys: Sequence[str] | None,
        tag_column: str | None,
    ) -> CsvLayout:
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            if name in index:
                raise DatasetError(f"{path}:1: column '{name}' appears twice in the header")
            index[name] = i

        def columns(names: Sequence[str], what: str) -> tuple[tuple[str, int], ...]:
            missing = [n for n in names if n not in index]
            if missing:
                raise DatasetError(
                    f"{path}: no column {', '.join(repr(n) for n in missing)} for the "
                    f"{what}; the header has {', '.join(repr(n) for n in header)}"
                )
            return tuple((n, index[n]) for n in names)

        inputs = columns(input_keys, "input")
        if output_keys is None:
            found = [n for n in ("expected_output", "expected", "output") if n in index]
            output_keys = [n for n in found if n not in input_keys][:1]
        outputs = columns(output_keys, "expected output")
        tag_index = columns([tag_column], "tags")[0][1] if tag_column is not None else None
        used = {i for _, i in inputs} | {i for _, i in outputs} | {tag_index}
        id_index = index.get("id")
        if id_index in used:
            id_index = None
        used.add(id_index)
        metadata = tuple((n, i) for n, i in index.items() if i not in used)
        return cls(inputs, outputs, metadata, id_index, tag_index)

    def example(self, row: Sequence[str]) -> Example:
        input = {name: row[i] for name, i in self.inputs}
        expected = {name: row[i] for name, i in self.outputs}
        metadata = {name: row[i] for name, i in self.metadata}
        ident = row[self.id_index] if self.id_index is not None else ""
        return Example(ident or example_id(input, expected), input, expected, metadata)

    def tagged(self, row: Sequence[str], tag: str, delimiter: str) -> bool:
        """Whether the row's tag cell, split on ``delimiter``, names ``tag``."""
        assert self.tag_index is not None
        return any(t.strip() == tag for t in row[self.tag_index].split(delimiter))


class CsvExamples:
    """The examples of a dataset CSV, read lazily each time they are iterated."""

    __slots__ = ("layout", "path")

    def __init__(self, path: Path, layout: CsvLayout) -> None:
        self.path = path
        self.layout = layout

    def __repr__(self) -> str:
        return f"CsvExamples({str(self.path)!r})"

    def __iter__(self) -> Iterator[Example]:
        records = csv_records(self.path)
        next(records, None)  # the header
        example = self.layout.example
        for _, row in records:
            yield example(row)


class TestsetExamples:
    """The rows of a testset CSV tagged with one dataset's name, read lazily."""

    __slots__ = ("delimiter", "layout", "path", "tag")
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, path: Path, layout: CsvLayout, tag: str, delimiter: str) -> None:
        self.path = path
        self.layout = layout
        self.tag = tag
        self.delimiter = delimiter

    def __repr__(self) -> str:
        return f"TestsetExamples({str(self.path)!r}, tag={self.tag!r})"

    def __iter__(self) -> Iterator[Example]:
        records = csv_records(self.path)
        next(records, None)  # the header
        layout, tag, delimiter = self.layout, self.tag, self.delimiter
        for _, row in records:
            if layout.tagged(row, tag, delimiter):
                yield layout.example(row)
