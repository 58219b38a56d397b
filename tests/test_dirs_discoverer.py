"""The dirs discoverer: folders with task.py are experiments; other files evaluate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from evalwire.builtin.dirs import evalwire_discover
from evalwire.config import Config
from evalwire.errors import UsageError


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def config(root: Path, **settings: object) -> Config:
    return Config(experiments_dir=root / "experiments", root=root, settings=dict(settings))


def test_each_folder_with_task_py_is_an_experiment_named_after_it(tmp_path: Path) -> None:
    write(tmp_path / "experiments/b/task.py", "def task(x): return x\n")
    write(tmp_path / "experiments/a/task.py", "def task(x): return x\n")
    write(tmp_path / "experiments/notes/readme.py", "x = 1\n")
    write(tmp_path / "experiments/top.py", "def task(x): return x\n")
    specs = evalwire_discover(config(tmp_path))
    assert [s.name for s in specs] == ["a", "b"]
    assert all(s.dataset_name == s.name and s.error is None for s in specs)


def test_every_other_py_file_is_an_evaluator_named_after_the_file(tmp_path: Path) -> None:
    write(tmp_path / "experiments/qa/task.py", "def task(x): return x\n")
    write(
        tmp_path / "experiments/qa/_factory.py",
        "def make():\n    def ev(output): return 1.0\n    return ev\n",
    )
    write(tmp_path / "experiments/qa/strict.py", "from ._factory import make\nstrict = make()\n")
    write(tmp_path / "experiments/qa/lenient.py", "from ._factory import make\nlenient = make()\n")
    (spec,) = evalwire_discover(config(tmp_path))
    assert sorted(spec.evaluators) == ["lenient", "strict"]


def test_a_task_that_fails_to_import_fails_only_its_experiment(tmp_path: Path) -> None:
    write(tmp_path / "experiments/bad/task.py", "x = 1\ny = x / 0\ndef task(x): return x\n")
    write(tmp_path / "experiments/good/task.py", "def task(x): return x\n")
    bad, good = evalwire_discover(config(tmp_path))
    assert bad.error is not None and good.error is None
    assert "task.py failed to import: ZeroDivisionError: division by zero (line 2)" in bad.error


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "experiments/bad/task.py", "def task(x):\n    return (\n")
    write(tmp_path / "experiments/bad/score.py", "def score(output): return 1\n")
    (spec,) = evalwire_discover(config(tmp_path))
    assert spec.error is not None and "SyntaxError" in spec.error and "task.py" in spec.error


def test_an_evaluator_file_without_its_callable_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path / "experiments/qa/task.py", "def task(x): return x\n")
    write(tmp_path / "experiments/qa/helpers.py", "def other(): pass\n")
    (spec,) = evalwire_discover(config(tmp_path))
    assert spec.error is not None and "helpers.py defines no callable named 'helpers'" in spec.error


def test_the_users_tree_is_not_written_to(tmp_path: Path) -> None:
    write(tmp_path / "experiments/qa/task.py", "import _util\ndef task(x): return _util.f(x)\n")
    write(tmp_path / "experiments/qa/_util.py", "def f(x): return x\n")
    before = sorted(p.name for p in (tmp_path / "experiments").rglob("*"))
    evalwire_discover(config(tmp_path))
    assert sorted(p.name for p in (tmp_path / "experiments").rglob("*")) == before


def test_sys_path_and_sys_modules_are_left_as_found(tmp_path: Path) -> None:
    write(
        tmp_path / "experiments/qa/task.py",
        "from . import _util\nimport json\ndef task(x): return x\n",
    )
    write(tmp_path / "experiments/qa/_util.py", "X = 1\n")
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    (spec,) = evalwire_discover(config(tmp_path))
    assert spec.error is None
    assert sys.path == path_before
    assert not {m for m in set(sys.modules) - modules_before if "_evalwire_exp_" in m}


def test_config_can_name_the_dataset_and_params(tmp_path: Path) -> None:
    write(
        tmp_path / "experiments/qa/task.py",
        "params = {'k': 3, 'model': 'a'}\ndef task(x): return x\n",
    )
    cfg = config(tmp_path, experiments={"qa": {"dataset": "qa_v2", "params": {"model": "b"}}})
    (spec,) = evalwire_discover(cfg)
    assert spec.dataset_name == "qa_v2" and spec.params == {"k": 3, "model": "b"}


def test_a_missing_experiments_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        evalwire_discover(config(tmp_path))
