"""Properties of dataset parsing: whatever is written is what is read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalwire.builtin._rows import scan_lines
from evalwire.builtin.files import evalwire_load_dataset
from evalwire.config import Config
from evalwire.models import Dataset, ExperimentSpec

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=4)


@st.composite
def phoenix_rows(draw: st.DrawFn) -> dict[str, Any]:
    row: dict[str, Any] = {"input": draw(json_objects)}
    if draw(st.booleans()):
        row[draw(st.sampled_from(["expected", "output"]))] = draw(json_objects)
    if draw(st.booleans()):
        row["metadata"] = draw(json_objects)
    if draw(st.booleans()):
        row["id"] = draw(st.text(min_size=1))
    return row


# Cells as hand-edited spreadsheets hold them: anything, the tag delimiter included.
cells = st.text(
    st.characters(blacklist_categories=["Cs"]) | st.sampled_from([",", '"', "\n", "\r", "|"]),
)


def load(root: Path, name: str = "qa", **dataset: Any) -> Dataset:
    experiments = root / "experiments"
    experiments.mkdir(exist_ok=True)
    config = Config(
        experiments_dir=experiments, root=root, settings={"dataset": dataset} if dataset else {}
    )
    result = evalwire_load_dataset(ExperimentSpec(name=name, task=None, path=None), config)
    assert result is not None
    return result


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


@PROPERTY
@given(rows=st.lists(phoenix_rows(), max_size=20), ascii_only=st.booleans())
def test_jsonl_rows_read_back_as_written_in_order(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]], ascii_only: bool
) -> None:
    root = tmp_path_factory.mktemp("prop")
    path = root / "datasets/qa.jsonl"
    path.parent.mkdir()
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows), encoding="utf-8"
    )

    dataset = load(root)
    examples = list(dataset)

    assert dataset.size == len(rows)
    assert [e.input for e in examples] == [r["input"] for r in rows]
    assert [e.expected for e in examples] == [r.get("expected", r.get("output", {})) for r in rows]
    assert [e.metadata for e in examples] == [r.get("metadata", {}) for r in rows]
    assert [e.id for e, r in zip(examples, rows, strict=True) if "id" in r] == [
        r["id"] for r in rows if "id" in r
    ]


@PROPERTY
@given(
    lines=st.lists(
        st.one_of(
            st.just("x"),
            st.text(st.sampled_from([" ", "\t", "\r"]), max_size=3),
            st.text(st.sampled_from([" ", "\t", "\r", "x", "\u2028"]), max_size=5),
        ),
        max_size=30,
    ),
    final_newline=st.booleans(),
    chunk_size=st.integers(1, 16),
)
def test_scan_lines_counts_non_blank_lines_whatever_the_chunk_size(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], final_newline: bool, chunk_size: int
) -> None:
    path = tmp_path_factory.mktemp("prop") / "lines.jsonl"
    text = "\n".join(lines) + ("\n" if final_newline else "")
    path.write_bytes(text.encode())

    _, count = scan_lines(path, chunk_size)

    assert count == sum(1 for line in text.split("\n") if line.strip(" \t\r\n"))
    assert scan_lines(path, chunk_size)[0] == scan_lines(path)[0]


@PROPERTY
@given(rows=st.lists(st.tuples(cells, cells, cells), max_size=15))
def test_csv_cells_read_back_exactly_as_written(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str]]
) -> None:
    root = tmp_path_factory.mktemp("prop")
    write_csv(
        root / "datasets/qa.csv",
        [["user_query", "expected_output", "note"], *([*r] for r in rows)],
    )

    dataset = load(root)
    examples = list(dataset)

    assert dataset.size == len(rows)
    assert [(e.input, e.expected, e.metadata) for e in examples] == [
        ({"user_query": q}, {"expected_output": a}, {"note": n}) for q, a, n in rows
    ]


@PROPERTY
@given(
    rows=st.lists(
        st.tuples(cells, cells, st.sets(st.sampled_from(["qa", "chat", "search"]), min_size=1)),
        min_size=1,
        max_size=15,
    ),
    name=st.sampled_from(["qa", "chat", "search"]),
)
def test_testset_rows_reach_exactly_the_datasets_they_are_tagged_with(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, set[str]]], name: str
) -> None:
    root = tmp_path_factory.mktemp("prop")
    write_csv(
        root / "testset.csv",
        [
            ["user_query", "expected_output", "tags"],
            *([q, a, " | ".join(sorted(tags))] for q, a, tags in rows),
        ],
    )
    wanted = [(q, a) for q, a, tags in rows if name in tags]
    experiments = root / "experiments"
    experiments.mkdir()
    config = Config(
        experiments_dir=experiments, root=root, settings={"dataset": {"csv_path": "testset.csv"}}
    )

    dataset = evalwire_load_dataset(ExperimentSpec(name=name, task=None, path=None), config)

    if not wanted:
        assert dataset is None
        return
    assert dataset is not None
    assert dataset.size == len(wanted)
    assert [(e.input["user_query"], e.expected["expected_output"]) for e in dataset] == wanted
