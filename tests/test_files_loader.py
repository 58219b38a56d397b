"""The built-in ``files`` loader: where it looks, what it reads, how it fails."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from evalwire.builtin import files
from evalwire.builtin.files import describe_search, evalwire_load_dataset
from evalwire.config import Config
from evalwire.errors import DatasetError
from evalwire.models import Dataset, Example, ExperimentSpec
from evalwire.plugins import Plugins, hookimpl

# -- helpers ------------------------------------------------------------------


def make_config(root: Path, **dataset: Any) -> Config:
    experiments = root / "experiments"
    experiments.mkdir(exist_ok=True)
    settings = {"dataset": dataset} if dataset else {}
    return Config(experiments_dir=experiments, root=root, settings=settings)


def make_spec(root: Path, name: str = "qa", dataset: str | None = None) -> ExperimentSpec:
    folder = root / "experiments" / name
    folder.mkdir(parents=True, exist_ok=True)
    return ExperimentSpec(name=name, task=None, path=folder, dataset=dataset)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def load(root: Path, spec: ExperimentSpec | None = None, **dataset: Any) -> Dataset | None:
    return evalwire_load_dataset(spec or make_spec(root), make_config(root, **dataset))


def loaded(root: Path, spec: ExperimentSpec | None = None, **dataset: Any) -> Dataset:
    result = load(root, spec, **dataset)
    assert result is not None
    return result


def inputs(dataset: Dataset) -> list[dict[str, Any]]:
    return [e.input for e in dataset]


def starts(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for a message beginning with ``message``."""
    return "^" + re.escape(message)


def row(text: str, answer: str, **extra: Any) -> dict[str, Any]:
    return {"input": {"question": text}, "expected": {"answer": answer}, **extra}


UPSTREAM_HEADER = ["user_query", "expected_output", "tags", "source"]


# -- locations and formats ----------------------------------------------------


def test_jsonl_in_the_experiment_folder_is_loaded(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "experiments/qa/dataset.jsonl", [row("2+2?", "4", id="r1")])

    dataset = loaded(tmp_path)

    assert dataset.name == "qa"
    assert list(dataset) == [Example("r1", {"question": "2+2?"}, {"answer": "4"}, {})]
    assert dataset.source == str(path)
    assert dataset.size == 1


def test_csv_in_the_experiment_folder_is_loaded(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "experiments/qa/dataset.csv",
        [["question", "expected", "level"], ["2+2?", "4", "easy"]],
    )

    [example] = loaded(tmp_path)

    assert example.input == {"question": "2+2?"}
    assert example.expected == {"expected": "4"}
    assert example.metadata == {"level": "easy"}


def test_json_list_in_the_experiment_folder_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "experiments/qa/dataset.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps([row("a", "1"), row("b", "2")]))

    assert inputs(loaded(tmp_path)) == [{"question": "a"}, {"question": "b"}]


def test_json_object_with_examples_gives_its_own_version(tmp_path: Path) -> None:
    path = tmp_path / "experiments/qa/dataset.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 3, "examples": [row("a", "1")]}))

    dataset = loaded(tmp_path)

    assert dataset.version == "3"
    assert inputs(dataset) == [{"question": "a"}]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json"])
def test_datasets_folder_beside_the_experiments_folder_is_searched(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / "datasets" / f"qa{suffix}"
    if suffix == ".csv":
        write_csv(path, [["question", "expected"], ["a", "1"]])
    elif suffix == ".jsonl":
        write_jsonl(path, [{"input": {"question": "a"}, "expected": {"expected": "1"}}])
    else:
        path.parent.mkdir()
        path.write_text(json.dumps([{"input": {"question": "a"}, "expected": "1"}]))

    dataset = loaded(tmp_path)

    assert dataset.source == str(path)
    assert inputs(dataset) == [{"question": "a"}]


def test_datasets_folder_inside_the_experiments_folder_is_not_searched(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "experiments/datasets/qa.jsonl", [row("a", "1")])

    assert load(tmp_path) is None


def test_datasets_folder_file_is_named_for_the_dataset_not_the_experiment(
    tmp_path: Path,
) -> None:
    write_jsonl(tmp_path / "datasets/shared.jsonl", [row("a", "1")])
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("wrong", "0")])

    dataset = loaded(tmp_path, make_spec(tmp_path, "qa", dataset="shared"))

    assert dataset.name == "shared"
    assert inputs(dataset) == [{"question": "a"}]


def test_experiment_not_from_a_folder_is_found_in_the_datasets_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("a", "1")])
    spec = ExperimentSpec(name="qa", task=None, path=None)

    assert inputs(loaded(tmp_path, spec)) == [{"question": "a"}]


def test_dataset_file_names_match_case_sensitively(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/QA.jsonl", [row("a", "1")])

    assert load(tmp_path) is None


def test_nothing_found_returns_none(tmp_path: Path) -> None:
    assert load(tmp_path) is None


# -- precedence ---------------------------------------------------------------


def test_experiment_folder_comes_before_datasets_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "experiments/qa/dataset.jsonl", [row("own", "1")])
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("shared", "1")])

    assert inputs(loaded(tmp_path)) == [{"question": "own"}]


def test_datasets_folder_comes_before_testset_csv(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("shared", "1")])
    write_csv(tmp_path / "testset.csv", [UPSTREAM_HEADER, ["from testset", "1", "qa", ""]])

    dataset = loaded(tmp_path, csv_path="testset.csv")

    assert inputs(dataset) == [{"question": "shared"}]


def test_jsonl_comes_before_csv_and_json_in_one_folder(tmp_path: Path) -> None:
    folder = tmp_path / "experiments/qa"
    write_csv(folder / "dataset.csv", [["question"], ["csv"]])
    (folder / "dataset.json").write_text(json.dumps([row("json", "1")]))
    write_jsonl(folder / "dataset.jsonl", [row("jsonl", "1")])

    assert inputs(loaded(tmp_path)) == [{"question": "jsonl"}]


# -- testset CSV routing ------------------------------------------------------


def write_testset(root: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    return write_csv(root / "testset.csv", [header or UPSTREAM_HEADER, *rows])


def test_testset_rows_are_routed_to_the_dataset_their_tag_names(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q1", "a1", "qa", ""], ["q2", "a2", "other", ""]])

    dataset = loaded(tmp_path, csv_path="testset.csv")

    assert inputs(dataset) == [{"user_query": "q1"}]
    assert [e.expected for e in dataset] == [{"expected_output": "a1"}]
    assert dataset.size == 1


def test_testset_row_tagged_with_two_names_lands_in_both(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q1", "a1", "qa|search", ""]])

    for name in ("qa", "search"):
        dataset = loaded(tmp_path, make_spec(tmp_path, name), csv_path="testset.csv")
        assert inputs(dataset) == [{"user_query": "q1"}]


def test_testset_tags_are_stripped_of_spaces(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q1", "a1", " search | qa ", ""]])

    assert inputs(loaded(tmp_path, csv_path="testset.csv")) == [{"user_query": "q1"}]


def test_testset_delimiter_splits_only_the_tag_column(tmp_path: Path) -> None:
    write_testset(tmp_path, [["a|b?", "yes|no", "qa", "x|y"]])

    [example] = loaded(tmp_path, csv_path="testset.csv")

    assert example.input == {"user_query": "a|b?"}
    assert example.expected == {"expected_output": "yes|no"}
    assert example.metadata == {"source": "x|y"}


def test_testset_columns_other_than_input_output_and_tags_become_metadata(
    tmp_path: Path,
) -> None:
    header = ["user_query", "expected_output", "tags", "source", "difficulty"]
    write_testset(tmp_path, [["q", "a", "qa", "manual", "hard"]], header)

    [example] = loaded(tmp_path, csv_path="testset.csv")

    assert example.metadata == {"source": "manual", "difficulty": "hard"}


def test_testset_values_are_kept_as_written_strings(tmp_path: Path) -> None:
    write_testset(tmp_path, [["007", "1.0", "qa", ""], ["true", "", "qa", "NaN"]])

    examples = list(loaded(tmp_path, csv_path="testset.csv"))

    assert [(e.input, e.expected, e.metadata) for e in examples] == [
        ({"user_query": "007"}, {"expected_output": "1.0"}, {"source": ""}),
        ({"user_query": "true"}, {"expected_output": ""}, {"source": "NaN"}),
    ]


def test_testset_tag_column_delimiter_and_keys_are_configurable(tmp_path: Path) -> None:
    header = ["question", "context", "answer", "suite"]
    write_testset(tmp_path, [["q", "c", "a|b", "qa; smoke"]], header)

    [example] = loaded(
        tmp_path,
        csv_path="testset.csv",
        input_keys=["question", "context"],
        output_keys=["answer"],
        tag_column="suite",
        delimiter=";",
    )

    assert example.input == {"question": "q", "context": "c"}
    assert example.expected == {"answer": "a|b"}
    assert example.metadata == {}


def test_testset_csv_path_is_relative_to_the_project_root(tmp_path: Path) -> None:
    write_csv(tmp_path / "data/testset.csv", [UPSTREAM_HEADER, ["q", "a", "qa", ""]])

    dataset = loaded(tmp_path, csv_path="data/testset.csv")

    assert dataset.source == str(tmp_path / "data/testset.csv")


def test_testset_tags_match_the_dataset_name_case_sensitively(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q", "a", "QA", ""]])

    assert load(tmp_path, csv_path="testset.csv") is None


def test_testset_without_rows_for_the_dataset_returns_none(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q", "a", "other", ""]])

    assert load(tmp_path, csv_path="testset.csv") is None


def test_missing_testset_csv_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"testset\.csv.*does not exist"):
        load(tmp_path, csv_path="testset.csv")


def test_testset_without_its_tag_column_is_an_error_naming_the_column(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q", "a"]], ["user_query", "expected_output"])

    with pytest.raises(DatasetError, match=r"testset\.csv: no column 'tags'"):
        load(tmp_path, csv_path="testset.csv")


def test_testset_version_ignores_rows_of_other_datasets(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q", "a", "qa", ""], ["x", "y", "other", ""]])
    before = loaded(tmp_path, csv_path="testset.csv").version
    write_testset(tmp_path, [["q", "a", "qa", ""], ["x", "CHANGED", "other", ""]])
    after = loaded(tmp_path, csv_path="testset.csv").version
    write_testset(tmp_path, [["q", "CHANGED", "qa", ""], ["x", "CHANGED", "other", ""]])
    changed = loaded(tmp_path, csv_path="testset.csv").version

    assert before == after != changed


def test_bad_dataset_setting_is_an_error_naming_it(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q", "a", "qa", ""]])

    with pytest.raises(DatasetError, match=r"\[dataset\] delimiter must be a non-empty string"):
        load(tmp_path, csv_path="testset.csv", delimiter="")


# -- plain dataset CSV ----------------------------------------------------------


def test_csv_with_upstream_columns_uses_user_query_and_expected_output(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "datasets/qa.csv",
        [["source", *UPSTREAM_HEADER[:3]], ["manual", "q", "a", "qa|x"]],
    )

    [example] = loaded(tmp_path)

    assert example.input == {"user_query": "q"}
    assert example.expected == {"expected_output": "a"}
    assert example.metadata == {"source": "manual", "tags": "qa|x"}


def test_csv_without_known_columns_takes_its_first_column_as_input(tmp_path: Path) -> None:
    write_csv(tmp_path / "datasets/qa.csv", [["prompt", "notes", "output"], ["p", "n", "o"]])

    [example] = loaded(tmp_path)

    assert example.input == {"prompt": "p"}
    assert example.expected == {"output": "o"}
    assert example.metadata == {"notes": "n"}


def test_csv_without_an_expected_column_has_empty_expected(tmp_path: Path) -> None:
    write_csv(tmp_path / "datasets/qa.csv", [["prompt", "notes"], ["p", "n"]])

    [example] = loaded(tmp_path)

    assert example.expected == {}
    assert example.metadata == {"notes": "n"}


def test_csv_uses_configured_input_and_output_keys(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "datasets/qa.csv",
        [["user_query", "doc", "gold", "expected_output"], ["q", "d", "g", "e"]],
    )

    [example] = loaded(tmp_path, input_keys=["user_query", "doc"], output_keys=["gold"])

    assert example.input == {"user_query": "q", "doc": "d"}
    assert example.expected == {"gold": "g"}
    assert example.metadata == {"expected_output": "e"}


def test_csv_missing_a_configured_column_is_an_error_naming_it(tmp_path: Path) -> None:
    write_csv(tmp_path / "datasets/qa.csv", [["prompt"], ["p"]])

    with pytest.raises(DatasetError, match=r"qa\.csv: no column 'question' for the input"):
        load(tmp_path, input_keys=["question"])


def test_csv_id_column_is_the_example_id(tmp_path: Path) -> None:
    write_csv(tmp_path / "datasets/qa.csv", [["id", "prompt"], ["case-7", "p"], ["", "q"]])

    first, second = loaded(tmp_path)

    assert first.id == "case-7"
    assert first.input == {"prompt": "p"}
    assert first.metadata == {}
    assert second.id.startswith("ex-")


def test_csv_cells_keep_quotes_commas_newlines_and_unicode(tmp_path: Path) -> None:
    text = 'He said "hi",\nthen — ünïcødé | left\r\n'
    write_csv(tmp_path / "datasets/qa.csv", [["prompt", "expected"], [text, text]])

    [example] = loaded(tmp_path)

    assert example.input == {"prompt": text}
    assert example.expected == {"expected": text}


def test_csv_with_a_byte_order_mark_reads_its_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "datasets/qa.csv"
    path.parent.mkdir()
    path.write_bytes("\ufeffprompt,expected\r\np,e\r\n".encode())

    [example] = loaded(tmp_path)

    assert example.input == {"prompt": "p"}


def test_csv_size_counts_records_not_lines(tmp_path: Path) -> None:
    write_csv(tmp_path / "datasets/qa.csv", [["prompt"], ["two\nlines"], ["one"]])

    dataset = loaded(tmp_path)

    assert dataset.size == 2
    assert len(list(dataset)) == 2


# -- JSONL rows ---------------------------------------------------------------


def test_jsonl_output_key_is_read_as_expected(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [{"input": {"q": 1}, "output": {"a": 2}}])

    [example] = loaded(tmp_path)

    assert example.expected == {"a": 2}


def test_jsonl_expected_key_wins_over_output(tmp_path: Path) -> None:
    rows = [{"input": {"q": 1}, "expected": {"a": 2}, "output": {"a": 3}}]
    write_jsonl(tmp_path / "datasets/qa.jsonl", rows)

    [example] = loaded(tmp_path)

    assert example.expected == {"a": 2}


def test_jsonl_non_object_input_and_expected_are_wrapped(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [{"input": "2+2?", "expected": 4}])

    [example] = loaded(tmp_path)

    assert example.input == {"input": "2+2?"}
    assert example.expected == {"expected_output": 4}


def test_jsonl_row_without_expected_has_empty_expected_and_metadata(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [{"input": {"q": 1}}])

    [example] = loaded(tmp_path)

    assert (example.expected, example.metadata) == ({}, {})


def test_jsonl_metadata_is_kept(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("a", "1", metadata={"level": 2})])

    [example] = loaded(tmp_path)

    assert example.metadata == {"level": 2}


def test_jsonl_blank_lines_are_skipped_and_not_counted(tmp_path: Path) -> None:
    path = tmp_path / "datasets/qa.jsonl"
    path.parent.mkdir()
    lines = ["", json.dumps(row("a", "1")), "   ", "\t", json.dumps(row("b", "2")), ""]
    path.write_text("\n".join(lines) + "\n\n")

    dataset = loaded(tmp_path)

    assert dataset.size == 2
    assert inputs(dataset) == [{"question": "a"}, {"question": "b"}]


def test_jsonl_with_crlf_line_endings_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "datasets/qa.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"input": {"q": 1}}\r\n\r\n  {"input": {"q": 2}}  ')

    dataset = loaded(tmp_path)

    assert dataset.size == 2
    assert inputs(dataset) == [{"q": 1}, {"q": 2}]


def test_jsonl_unicode_line_separator_inside_a_string_does_not_split_a_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "datasets/qa.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"input": "a\u2028b\x85c"}, ensure_ascii=False) + "\n")

    dataset = loaded(tmp_path)

    assert dataset.size == 1
    assert inputs(dataset) == [{"input": "a\u2028b\x85c"}]


# -- streaming ----------------------------------------------------------------


def test_jsonl_examples_are_the_same_when_iterated_twice(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row(str(i), str(i)) for i in range(5)])

    dataset = loaded(tmp_path)

    assert list(dataset) == list(dataset)
    assert len(list(dataset)) == 5


def test_jsonl_size_is_known_without_iterating(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row(str(i), str(i)) for i in range(1234)])

    dataset = loaded(tmp_path)

    assert dataset.size == 1234
    assert len(dataset) == 1234
    assert not isinstance(dataset.examples, list)


def test_jsonl_bad_line_is_raised_only_after_the_rows_before_it(tmp_path: Path) -> None:
    path = tmp_path / "datasets/qa.jsonl"
    good = [json.dumps(row(str(i), str(i))) for i in range(4)]
    lines = [*good, "{oops", json.dumps(row("5", "5"))]
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    dataset = loaded(tmp_path)  # loading does not parse the rows
    yielded: list[Example] = []

    with pytest.raises(DatasetError, match=r"qa\.jsonl:5: invalid JSON"):
        for example in dataset:
            yielded.append(example)

    assert len(yielded) == 4


def test_jsonl_rows_are_read_when_iterated_not_when_loaded(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "datasets/qa.jsonl", [row("old", "1")])
    dataset = loaded(tmp_path)

    write_jsonl(path, [row("new", "1")])

    assert inputs(dataset) == [{"question": "new"}]


def test_csv_rows_are_read_when_iterated_not_when_loaded(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "datasets/qa.csv", [["prompt"], ["old"]])
    dataset = loaded(tmp_path)

    write_csv(path, [["prompt"], ["new"]])

    assert inputs(dataset) == [{"prompt": "new"}]


# -- malformed rows -----------------------------------------------------------


def iterate(dataset: Dataset) -> list[Example]:
    return list(dataset)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_invalid_json_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "datasets/qa.jsonl", [json.dumps(row("a", "1")), "", "{nope}"])

    with pytest.raises(DatasetError, match=starts(f"{path}:3: invalid JSON")):
        iterate(loaded(tmp_path))


def test_line_that_is_not_an_object_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "datasets/qa.jsonl", ['"just text"'])

    with pytest.raises(
        DatasetError, match=starts(f"{path}:1: expected a JSON object, found a string")
    ):
        iterate(loaded(tmp_path))


def test_line_with_trailing_garbage_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "datasets/qa.jsonl", ['{"input": 1} x'])

    with pytest.raises(DatasetError, match=starts(f"{path}:1: invalid JSON: Extra data")):
        iterate(loaded(tmp_path))


def test_row_without_input_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "datasets/qa.jsonl", ['{"input": 1}', '{"expected": 2}'])

    with pytest.raises(DatasetError, match=starts(f"{path}:2: row has no 'input' key")):
        iterate(loaded(tmp_path))


def test_row_with_non_object_metadata_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "datasets/qa.jsonl", ['{"input": 1, "metadata": [1]}'])

    with pytest.raises(DatasetError, match=starts(f"{path}:1: 'metadata' must be an object")):
        iterate(loaded(tmp_path))


def test_csv_row_with_wrong_number_of_fields_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "datasets/qa.csv", ["prompt,expected", "a,b", "c,d,e"])

    with pytest.raises(DatasetError, match=starts(f"{path}:3: 3 fields where the header has 2")):
        load(tmp_path)


def test_csv_line_numbers_count_lines_inside_quoted_cells(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "datasets/qa.csv", ["prompt,expected", '"a\nb",c', "d"])

    with pytest.raises(DatasetError, match=starts(f"{path}:4: 1 field where the header has 2")):
        load(tmp_path)


def test_testset_row_with_wrong_number_of_fields_is_named_by_file_and_line(
    tmp_path: Path,
) -> None:
    path = write_lines(tmp_path / "testset.csv", [",".join(UPSTREAM_HEADER), "q,a,qa"])

    with pytest.raises(DatasetError, match=starts(f"{path}:2: 3 fields where the header has 4")):
        load(tmp_path, csv_path="testset.csv")


def test_json_example_without_input_is_named_by_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "datasets/qa.json"
    path.parent.mkdir()
    path.write_text(json.dumps([row("a", "1"), {"expected": 1}]))

    with pytest.raises(DatasetError, match=starts(f"{path}: example 2: row has no 'input' key")):
        load(tmp_path)


def test_invalid_json_file_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "datasets/qa.json", ["[", '  {"input": 1},', "  oops", "]"])

    with pytest.raises(DatasetError, match=starts(f"{path}:3: invalid JSON")):
        load(tmp_path)


def test_json_file_of_the_wrong_shape_is_an_error(tmp_path: Path) -> None:
    write_lines(tmp_path / "datasets/qa.json", ['{"rows": []}'])

    with pytest.raises(DatasetError, match=r"expected a list of examples"):
        load(tmp_path)


def test_file_that_is_not_utf8_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "datasets/qa.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"input": "\xff\xfe"}\n')

    with pytest.raises(DatasetError, match=starts(f"{path}:1: not valid UTF-8")):
        iterate(loaded(tmp_path))


def test_file_gone_before_iteration_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "datasets/qa.jsonl", [row("a", "1")])
    dataset = loaded(tmp_path)
    path.unlink()

    with pytest.raises(DatasetError, match=starts(f"cannot read dataset {path}")):
        iterate(dataset)


# -- ids and versions -----------------------------------------------------------


def test_row_id_is_the_example_id_as_a_string(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("a", "1", id=7), row("b", "2", id="x")])

    assert [e.id for e in loaded(tmp_path)] == ["7", "x"]


def test_rows_without_id_keep_their_ids_across_dataset_versions(tmp_path: Path) -> None:
    path = tmp_path / "datasets/qa.jsonl"
    write_jsonl(path, [row("a", "1"), row("b", "2")])
    before = {e.input["question"]: e.id for e in loaded(tmp_path)}

    write_jsonl(path, [row("new", "0"), row("b", "2", metadata={"note": "x"}), row("a", "1")])
    after = {e.input["question"]: e.id for e in loaded(tmp_path)}

    assert after["a"] == before["a"]
    assert after["b"] == before["b"]
    assert len(set(after.values())) == 3
    assert all(i.startswith("ex-") and len(i) == 15 for i in after.values())


def test_content_ids_depend_on_input_and_expected(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("a", "1"), row("a", "2"), row("b", "1")])

    assert len({e.id for e in loaded(tmp_path)}) == 3


def test_same_row_gets_the_same_id_from_csv_and_jsonl(tmp_path: Path) -> None:
    write_csv(tmp_path / "datasets/qa.csv", [["prompt", "expected"], ["p", "e"]])
    same = {"input": {"prompt": "p"}, "expected": {"expected": "e"}}
    write_jsonl(tmp_path / "datasets/other.jsonl", [same])

    [from_csv] = loaded(tmp_path)
    [from_jsonl] = loaded(tmp_path, make_spec(tmp_path, "other"))

    assert from_csv.id == from_jsonl.id


def test_version_is_a_hash_of_the_file_content(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "datasets/qa.jsonl", [row("a", "1")])
    first = loaded(tmp_path).version
    again = loaded(tmp_path).version
    write_jsonl(path, [row("a", "2")])
    changed = loaded(tmp_path).version

    assert first == again != changed
    assert first is not None and len(first) == 12


# -- describing the search ------------------------------------------------------


def test_describe_search_lists_every_path_looked_at(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)

    text = describe_search(spec, make_config(tmp_path))

    assert f"{tmp_path / 'experiments/qa/dataset'}.{{jsonl,csv,json}}" in text
    assert f"{tmp_path / 'datasets/qa'}.{{jsonl,csv,json}}" in text
    assert "[dataset] csv_path" in text


def test_describe_search_names_the_datasets_a_testset_holds(tmp_path: Path) -> None:
    write_testset(tmp_path, [["q", "a", "search|chat", ""]])

    text = describe_search(make_spec(tmp_path), make_config(tmp_path, csv_path="testset.csv"))

    assert f"{tmp_path / 'testset.csv'}: no row tagged 'qa'" in text
    assert "its datasets are chat, search" in text


def test_describe_search_says_when_the_testset_is_missing(tmp_path: Path) -> None:
    text = describe_search(make_spec(tmp_path), make_config(tmp_path, csv_path="t.csv"))

    assert f"{tmp_path / 't.csv'}: does not exist" in text


# -- as a plugin ----------------------------------------------------------------


def test_loader_answers_through_the_plugin_manager(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("a", "1")])
    plugins = Plugins()
    plugins.register(files, "files")

    dataset = plugins.load_dataset(make_spec(tmp_path), make_config(tmp_path))

    assert dataset is not None and inputs(dataset) == [{"question": "a"}]


def test_an_installed_loader_answers_before_the_builtin_one(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "datasets/qa.jsonl", [row("a", "1")])

    class Installed:
        @hookimpl
        def evalwire_load_dataset(self, spec: ExperimentSpec, config: Config) -> Dataset:
            return Dataset(spec.dataset_name, [])

    plugins = Plugins()
    plugins.register(Installed(), "installed")
    plugins.register(files, "files")  # registered last, still called last: trylast

    dataset = plugins.load_dataset(make_spec(tmp_path), make_config(tmp_path))

    assert dataset is not None and list(dataset) == []
