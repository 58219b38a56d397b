"""``evalwire upload`` and ``evalwire validate``: testsets into Phoenix datasets.

``validate`` needs no server; ``upload`` runs against the session's real
Phoenix server, and what it made is read back through Phoenix's REST API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clihelpers import Result, evalwire, write, write_jsonl

from evalwire.builtin._rows import example_id

pytest.register_assert_rewrite("phoenix_fixture")
from phoenix_fixture import (  # noqa: E402
    PhoenixServer,
    dataset_examples,
    dataset_versions,
    experiments_of,
    find_dataset,
    free_port,
    unique,
)

pytest_plugins = ["phoenix_fixture"]

PLUGINS = ("-p", "evalwire.builtin.phoenix", "-p", "no:store")

Env = Callable[..., dict[str, str]]


@pytest.fixture
def env(phoenix_env: Env) -> Env:
    return phoenix_env


@pytest.fixture
def api(phoenix_api: Any) -> Any:
    return phoenix_api


def upload(tmp_path: Path, server: PhoenixServer, env: Env, *args: str) -> Result:
    return evalwire(*PLUGINS, "upload", "--phoenix", server.url, *args, cwd=tmp_path, env=env())


def validate(tmp_path: Path, *args: str) -> Result:
    return evalwire(*PLUGINS, "validate", *args, cwd=tmp_path)


def write_testset(path: Path, header: str, *lines: str) -> Path:
    """Write a CSV testset: a header and rows, as written."""
    return write(path, "\n".join([header, *lines]) + "\n")


def examples_of(api: Any, name: str, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """A dataset's examples by their input's ``user_query``."""
    found = find_dataset(api, name)
    assert found is not None, f"no dataset {name}"
    return {e["input"]["user_query"]: e for e in dataset_examples(api, found["id"], **kwargs)}


# -- validate -------------------------------------------------------------------


def test_validate_a_good_testset_exits_0_and_says_what_it_holds(tmp_path: Path) -> None:
    write_testset(
        tmp_path / "t.csv",
        "user_query,expected_output,tags",
        "hi,HI,greet",
        "bye,BYE,greet|farewell",
    )

    result = validate(tmp_path, "--csv", "t.csv")

    assert result.returncode == 0, result
    assert "t.csv is valid: 2 row(s) in 2 dataset(s): greet (2), farewell (1)" in result.stdout


def test_validate_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    write_testset(
        tmp_path / "t.csv",
        "user_query,expected_output,tags",
        "hi,HI,greet",  # line 2
        ",EMPTY,greet",  # 3: empty input
        "what,,greet",  # 4: empty expected output
        "hi,HI,greet",  # 5: duplicate of line 2
        "lost,LOST,",  # 6: no dataset
        "too,many,fields,here",  # 7
    )

    result = validate(tmp_path, "--csv", "t.csv")

    assert result.returncode == 1, result
    assert result.stdout.splitlines() == [
        "t.csv:3: empty input 'user_query'",
        "t.csv:4: empty expected output 'expected_output'",
        "t.csv:5: duplicate of line 2 in dataset 'greet' (same input and expected output)",
        "t.csv:6: empty tag in column 'tags': no dataset",
        "t.csv:7: 4 fields where the header has 3",
        "5 problem(s) in t.csv",
    ]


def test_validate_reports_columns_outside_the_metadata_keys(tmp_path: Path) -> None:
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags,topic,scratch", "a,A,x,t,s")

    result = validate(tmp_path, "--csv", "t.csv", "--metadata-keys", "topic")

    assert result.returncode == 1, result
    assert "t.csv: unknown column 'scratch'" in result.stdout


def test_validate_reports_a_missing_column_with_the_header_it_found(tmp_path: Path) -> None:
    write_testset(tmp_path / "t.csv", "question,expected_output,tags", "a,A,x")

    result = validate(tmp_path, "--csv", "t.csv")

    assert result.returncode == 1, result
    assert "t.csv:1: no column 'user_query' for the input; the header has 'question'" in (
        result.stdout
    )


def test_validate_reports_jsonl_problems_with_their_lines(tmp_path: Path) -> None:
    write(
        tmp_path / "t.jsonl",
        '{"input": {"q": 1}, "expected": {"a": 1}, "metadata": {"tags": "x"}}\n'
        "{not json\n"
        '{"expected": {"a": 2}, "metadata": {"tags": "x"}}\n'
        '{"input": {"q": 3}, "expected": {"a": 3}}\n'
        '{"input": {"q": 4}, "metadata": {"tags": "x"}}\n',
    )

    result = validate(tmp_path, "--jsonl", "t.jsonl")

    assert result.returncode == 1, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith("t.jsonl:2: invalid JSON")
    assert lines[1:] == [
        "t.jsonl:3: row has no 'input' key",
        "t.jsonl:4: no dataset: give --dataset NAME, or name datasets in metadata 'tags'",
        "t.jsonl:5: no expected output ('expected' or 'output')",
        "4 problem(s) in t.jsonl",
    ]


def test_validate_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = validate(tmp_path, "--csv", "nope.csv")

    assert result.returncode == 2, result
    assert "nope.csv does not exist" in result.stderr


def test_validate_takes_its_defaults_from_the_dataset_table(tmp_path: Path) -> None:
    write(tmp_path / "data" / "t.csv", "q,a,suite\nhi,HI,x;y\n")
    write(
        tmp_path / "evalwire.toml",
        """
        [dataset]
        csv_path = "data/t.csv"
        input_keys = ["q"]
        output_keys = ["a"]
        tag_column = "suite"
        delimiter = ";"
        """,
    )

    result = validate(tmp_path)

    assert result.returncode == 0, result
    assert "1 row(s) in 2 dataset(s): x (1), y (1)" in result.stdout


# -- upload: CSV ------------------------------------------------------------------


def test_upload_makes_a_dataset_per_tag_keeping_unmapped_columns_as_metadata(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    first, second = unique("first"), unique("second")
    write_testset(
        tmp_path / "t.csv",
        "user_query,expected_output,tags,difficulty",
        f"hi,a|b,{first},easy",
        f"bye,BYE,{first}|{second},hard",
    )

    result = upload(tmp_path, phoenix_server, env, "--csv", "t.csv")

    assert result.returncode == 0, result
    assert f"created dataset '{first}': 2 example(s)" in result.stdout
    assert f"created dataset '{second}': 1 example(s)" in result.stdout
    examples = examples_of(api, first)
    assert examples["hi"]["output"] == {"expected_output": "a|b"}  # the delimiter splits tags only
    assert examples["hi"]["metadata"] == {"difficulty": "easy"}  # kept; the tag column is not
    assert list(examples_of(api, second)) == ["bye"]
    # Each example keeps the id the local files loader gives the same row.
    assert examples["bye"]["id"] == example_id({"user_query": "bye"}, {"expected_output": "BYE"})


def test_upload_skips_a_dataset_phoenix_already_has_and_says_so(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("skip")
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags", f"hi,HI,{name}")
    assert upload(tmp_path, phoenix_server, env, "--csv", "t.csv").returncode == 0
    write_testset(
        tmp_path / "t.csv", "user_query,expected_output,tags", f"hi,HI,{name}", f"new,N,{name}"
    )

    result = upload(tmp_path, phoenix_server, env, "--csv", "t.csv")

    assert result.returncode == 0, result
    assert f"skipped dataset '{name}': Phoenix already has it (1 example(s))" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("1 dataset(s): 1 skipped")
    assert list(examples_of(api, name)) == ["hi"]


def test_append_adds_the_rows_phoenix_does_not_have(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("append")
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags", f"hi,HI,{name}")
    assert upload(tmp_path, phoenix_server, env, "--csv", "t.csv").returncode == 0
    write_testset(
        tmp_path / "t.csv", "user_query,expected_output,tags", f"hi,HI,{name}", f"new,N,{name}"
    )

    result = upload(tmp_path, phoenix_server, env, "--csv", "t.csv", "--on-exist", "append")

    assert result.returncode == 0, result
    assert f"appended to dataset '{name}': 1 new, 0 updated (now 2 example(s))" in result.stdout
    assert sorted(examples_of(api, name)) == ["hi", "new"]


def test_overwrite_adds_a_version_and_keeps_the_experiments(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("overwrite")
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags", f"old,O,{name}")
    assert upload(tmp_path, phoenix_server, env, "--csv", "t.csv").returncode == 0
    dataset = find_dataset(api, name)
    assert dataset is not None
    api.post(f"/v1/datasets/{dataset['id']}/experiments", json={"name": "before"})
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags", f"new,N,{name}")

    result = upload(tmp_path, phoenix_server, env, "--csv", "t.csv", "--on-exist", "overwrite")

    assert result.returncode == 0, result
    assert f"replaced dataset '{name}' with a new version: 1 new, 0 updated, 1 removed" in (
        result.stdout
    )
    assert "earlier versions and their 1 experiment(s) are kept" in result.stdout
    assert list(examples_of(api, name)) == ["new"]
    versions = dataset_versions(api, dataset["id"])
    assert len(versions) == 2
    assert list(examples_of(api, name, version_id=versions[-1]["version_id"])) == ["old"]
    assert [e["name"] for e in experiments_of(api, dataset["id"])] == ["before"]


def test_overwrite_with_force_says_what_it_deletes_then_starts_afresh(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("force")
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags", f"old,O,{name}")
    assert upload(tmp_path, phoenix_server, env, "--csv", "t.csv").returncode == 0
    old = find_dataset(api, name)
    assert old is not None
    api.post(f"/v1/datasets/{old['id']}/experiments", json={"name": "doomed"})
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags", f"new,N,{name}")

    result = upload(
        tmp_path, phoenix_server, env, "--csv", "t.csv", "--on-exist", "overwrite", "--force"
    )

    assert result.returncode == 0, result
    warning, created = result.stdout.splitlines()[:2]
    assert warning == (
        f"deleting dataset '{name}' (--force): its 1 example(s), 1 version(s) and "
        "1 experiment(s) (doomed) are deleted for good"
    )
    assert created == f"created dataset '{name}' afresh: 1 example(s)"
    new = find_dataset(api, name)
    assert new is not None
    assert experiments_of(api, new["id"]) == []
    assert len(dataset_versions(api, new["id"])) == 1
    assert list(examples_of(api, name)) == ["new"]


def test_force_without_overwrite_is_a_usage_error(tmp_path: Path, env: Env) -> None:
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags", "hi,HI,x")
    url = f"http://127.0.0.1:{free_port()}"

    result = evalwire(
        *PLUGINS, "upload", "--csv", "t.csv", "--force", "--phoenix", url, cwd=tmp_path, env=env()
    )

    assert result.returncode == 2, result
    assert "--force only applies to --on-exist overwrite" in result.stderr


def test_split_column_assigns_phoenix_splits(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name, train = unique("splits"), unique("train")
    write_testset(
        tmp_path / "t.csv",
        "user_query,expected_output,tags,split",
        f"a,A,{name},{train}",
        f"b,B,{name},{train}|hard",
        f"c,C,{name},test",
    )

    result = upload(tmp_path, phoenix_server, env, "--csv", "t.csv", "--split-column", "split")

    assert result.returncode == 0, result
    assert sorted(examples_of(api, name, split=train)) == ["a", "b"]
    assert "split" not in examples_of(api, name)["a"]["metadata"]


def test_strict_uploads_nothing_when_the_testset_has_a_problem(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("strict")
    write_testset(
        tmp_path / "t.csv", "user_query,expected_output,tags", f"hi,HI,{name}", f"bye,,{name}"
    )

    result = upload(tmp_path, phoenix_server, env, "--csv", "t.csv", "--strict")

    assert result.returncode == 1, result
    assert "t.csv:3: empty expected output 'expected_output'" in result.stderr
    assert "upload aborted: 1 problem(s)" in result.stderr
    assert find_dataset(api, name) is None


def test_without_strict_problems_are_warnings_and_unusable_rows_are_left_out(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("lenient")
    write_testset(
        tmp_path / "t.csv",
        "user_query,expected_output,tags",
        f"hi,HI,{name}",
        f"hi,HI,{name}",  # a duplicate: left out
        "lost,L,",  # no dataset: left out
        f"bye,,{name}",  # no expected output: uploaded, with a warning
    )

    result = upload(tmp_path, phoenix_server, env, "--csv", "t.csv")

    assert result.returncode == 0, result
    assert "warning: t.csv:3: duplicate of line 2" in result.stderr
    assert "warning: t.csv:4: empty tag" in result.stderr
    assert "warning: t.csv:5: empty expected output" in result.stderr
    assert sorted(examples_of(api, name)) == ["bye", "hi"]


def test_upload_takes_its_defaults_from_the_config_file(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name = unique("configured")
    write(tmp_path / "data" / "t.csv", f"q,a,suite,note\nhi,HI,{name};other_{name},n1\n")
    write(
        tmp_path / "evalwire.toml",
        f"""
        [dataset]
        csv_path = "data/t.csv"
        input_keys = ["q"]
        output_keys = ["a"]
        tag_column = "suite"
        delimiter = ";"

        [phoenix]
        url = "{phoenix_server.url}"
        """,
    )

    result = evalwire(*PLUGINS, "upload", cwd=tmp_path, env=env())

    assert result.returncode == 0, result
    found = find_dataset(api, name)
    assert found is not None
    (example,) = dataset_examples(api, found["id"])
    assert (example["input"], example["output"], example["metadata"]) == (
        {"q": "hi"},
        {"a": "HI"},
        {"note": "n1"},
    )
    assert find_dataset(api, f"other_{name}") is not None


# -- upload: JSONL ----------------------------------------------------------------


def test_jsonl_rows_go_to_the_named_dataset_with_their_ids_and_splits(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    name, split = unique("jsonl"), unique("gold")
    write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"id": "q1", "input": {"user_query": "a"}, "expected": {"y": 1}, "splits": [split]},
            {"input": {"user_query": "b"}, "output": {"y": 2}, "metadata": {"source": "web"}},
        ],
    )

    result = upload(tmp_path, phoenix_server, env, "--jsonl", "t.jsonl", "--dataset", name)

    assert result.returncode == 0, result
    examples = examples_of(api, name)
    assert examples["a"]["id"] == "q1"
    assert examples["b"]["output"] == {"y": 2}
    assert examples["b"]["metadata"] == {"source": "web"}
    assert list(examples_of(api, name, split=split)) == ["a"]


def test_jsonl_rows_without_a_dataset_go_where_their_metadata_tags_say(
    tmp_path: Path, phoenix_server: PhoenixServer, api: Any, env: Env
) -> None:
    first, second = unique("tagged"), unique("tagged")
    write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"input": {"user_query": "a"}, "expected": {"y": 1}, "metadata": {"tags": first}},
            {
                "input": {"user_query": "b"},
                "expected": {"y": 2},
                "metadata": {"tags": [first, second]},
            },
        ],
    )

    result = upload(tmp_path, phoenix_server, env, "--jsonl", "t.jsonl")

    assert result.returncode == 0, result
    assert sorted(examples_of(api, first)) == ["a", "b"]
    assert examples_of(api, second)["b"]["metadata"] == {}


# -- upload: the server -----------------------------------------------------------


def test_upload_to_an_unreachable_server_is_one_line_and_exit_1(tmp_path: Path, env: Env) -> None:
    write_testset(tmp_path / "t.csv", "user_query,expected_output,tags", "hi,HI,x")
    url = f"http://127.0.0.1:{free_port()}"

    result = evalwire(
        *PLUGINS,
        "upload",
        "--csv",
        "t.csv",
        "--phoenix",
        url,
        cwd=tmp_path,
        env=env(PHOENIX_API_KEY="sk-secret-123"),
    )

    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines() == [
        f"evalwire: error: cannot reach Phoenix at {url} ([Errno 111] Connection refused); "
        "is the server running?"
    ]
    assert "sk-secret-123" not in result.output


def test_a_testset_uploaded_and_run_from_phoenix_has_the_local_example_ids(
    tmp_path: Path, phoenix_server: PhoenixServer, env: Env
) -> None:
    name = unique("roundtrip")
    write_testset(
        tmp_path / "t.csv",
        "user_query,expected_output,tags",
        f"hi,hi,{name}",
        f"bye,bye,{name}",
    )
    write(tmp_path / "evalwire.toml", '[dataset]\ncsv_path = "t.csv"\n')
    write(tmp_path / "experiments" / name / "task.py", "def task(input):\n    return input\n")
    local = evalwire(
        *PLUGINS, "run", "-e", "experiments", "--json", "local.json", cwd=tmp_path, env=env()
    )
    uploaded = upload(tmp_path, phoenix_server, env)

    remote = evalwire(
        *PLUGINS,
        "run",
        "-e",
        "experiments",
        "--json",
        "remote.json",
        "--phoenix",
        phoenix_server.url,
        cwd=tmp_path,
        env=env(),
    )

    assert (local.returncode, uploaded.returncode, remote.returncode) == (0, 0, 0)
    assert _example_ids(tmp_path / "local.json") == _example_ids(tmp_path / "remote.json")
    assert re.search(r"compare\?experimentId=", remote.stdout)


def _example_ids(path: Path) -> list[str]:
    (experiment,) = json.loads(path.read_text(encoding="utf-8"))["experiments"]
    return sorted(run["example_id"] for run in experiment["runs"])
