"""Settings come from the command line, then the config file, then the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalwire.config import Config, build_config
from evalwire.errors import UsageError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_apply_without_a_config_file(tmp_path: Path) -> None:
    config = build_config({}, cwd=tmp_path)
    assert (config.concurrency, config.task_concurrency, config.retries) == (1, 10, 3)
    assert config.timeout == 60.0 and config.config_path is None


def test_evalwire_toml_is_found_in_a_parent_folder_and_marks_the_root(tmp_path: Path) -> None:
    write(tmp_path / "evalwire.toml", "repetitions = 2\n")
    (tmp_path / "sub").mkdir()
    config = build_config({}, cwd=tmp_path / "sub")
    assert config.repetitions == 2 and config.root == tmp_path


def test_the_command_line_beats_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "evalwire.toml", "repetitions = 2\nretries = 5\n")
    config = build_config({"repetitions": 1}, cwd=tmp_path)
    assert (config.repetitions, config.retries) == (1, 5)


def test_tool_evalwire_in_pyproject_is_read(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project]\nname='x'\n[tool.evalwire]\nprefix = 'nightly'\n")
    assert build_config({}, cwd=tmp_path).prefix == "nightly"


def test_the_config_above_the_experiments_folder_governs_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "experiments").mkdir(parents=True)
    write(project / "evalwire.toml", "prefix = 'proj'\n")
    config = build_config({"experiments_dir": "project/experiments"}, cwd=tmp_path)
    assert config.prefix == "proj" and config.experiments_dir == tmp_path / "project/experiments"


def test_experiments_dir_in_the_file_is_relative_to_the_file(tmp_path: Path) -> None:
    write(tmp_path / "evalwire.toml", "experiments_dir = 'evals'\n")
    (tmp_path / "x").mkdir()
    assert build_config({}, cwd=tmp_path / "x").experiments_dir == tmp_path / "evals"


def test_a_named_config_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nope.toml does not exist"):
        build_config({}, config_path="nope.toml", cwd=tmp_path)


def test_a_malformed_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "evalwire.toml", "concurrency = = 3\n")
    with pytest.raises(UsageError, match="evalwire.toml is not valid TOML"):
        build_config({}, cwd=tmp_path)


def test_a_setting_of_the_wrong_type_is_an_error_naming_the_key(tmp_path: Path) -> None:
    write(tmp_path / "evalwire.toml", "concurrency = 'many'\n")
    with pytest.raises(UsageError, match="'concurrency' must be int"):
        build_config({}, cwd=tmp_path)


def test_metadata_merges_key_by_key(tmp_path: Path) -> None:
    write(tmp_path / "evalwire.toml", "[metadata]\nteam = 'search'\nstage = 'dev'\n")
    config = build_config({"metadata": {"stage": "ci"}}, cwd=tmp_path)
    assert config.metadata == {"team": "search", "stage": "ci"}


def test_plugin_options_fall_back_to_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "evalwire.toml", "json_path = 'out.json'\n")
    assert build_config({}, cwd=tmp_path).getoption("json_path") == "out.json"
    given_option = build_config({}, cwd=tmp_path, options={"json_path": "cli.json"})
    assert given_option.getoption("json_path") == "cli.json"


def test_a_timeout_of_zero_means_none(tmp_path: Path) -> None:
    assert build_config({"timeout": 0}, cwd=tmp_path).timeout is None


INTS = ("concurrency", "task_concurrency", "repetitions", "retries", "seed")


@given(
    file_values=st.dictionaries(st.sampled_from(INTS), st.integers(1, 50)),
    cli_values=st.dictionaries(st.sampled_from(INTS), st.one_of(st.none(), st.integers(1, 50))),
)
def test_merging_takes_each_setting_from_the_first_source_that_has_it(
    tmp_path_factory: pytest.TempPathFactory,
    file_values: dict[str, int],
    cli_values: dict[str, Any],
) -> None:
    folder = tmp_path_factory.mktemp("cfg")
    write(folder / "evalwire.toml", "".join(f"{k} = {v}\n" for k, v in file_values.items()))
    config = build_config(cli_values, cwd=folder)
    defaults = Config()
    for key in INTS:
        if cli_values.get(key) is not None:
            want = cli_values[key]
        elif key in file_values:
            want = file_values[key]
        else:
            want = getattr(defaults, key)
        assert getattr(config, key) == want
