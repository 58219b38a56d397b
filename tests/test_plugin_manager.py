"""The plugin manager: reporters are isolated, unmarked hooks work, typos are named."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from evalwire import ExperimentRunner
from evalwire.errors import ExperimentsFailed, PluginError
from evalwire.plugins import Plugins


def experiment(root: Path, rows: int = 3) -> Path:
    folder = root / "experiments" / "qa"
    folder.mkdir(parents=True)
    (folder / "task.py").write_text("def task(input):\n    return input['n']\n")
    (folder / "dataset.jsonl").write_text(
        "".join(json.dumps({"input": {"n": i}}) + "\n" for i in range(rows))
    )
    return root / "experiments"


def test_a_raising_reporter_is_named_once_and_the_others_still_hear_every_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    heard: list[str] = []
    broken = types.SimpleNamespace(
        evalwire_run_complete=lambda run: (_ for _ in ()).throw(RuntimeError("reporter bug"))
    )
    listener = types.SimpleNamespace(evalwire_run_complete=lambda run: heard.append(run.example_id))
    runner = ExperimentRunner(
        experiment(tmp_path),
        plugins=[("broken", broken), ("listener", listener)],
        plugin_args=["no:console"],
    )
    with pytest.raises(ExperimentsFailed):  # a reporter that failed makes the exit status 1
        runner.run()
    assert len(heard) == 3
    err = capsys.readouterr().err
    assert err.count("plugin 'broken' failed in evalwire_run_complete: RuntimeError") == 1


def test_an_unmarked_evalwire_function_is_a_hook_implementation(tmp_path: Path) -> None:
    finished: list[str] = []
    plugin = types.SimpleNamespace(
        evalwire_experiment_finish=lambda result: finished.append(result.status)
    )
    ExperimentRunner(
        experiment(tmp_path), plugins=[("plain", plugin)], plugin_args=["no:console"]
    ).run()
    assert finished == ["passed"]


def test_a_misspelled_hook_is_an_error_suggesting_the_real_name() -> None:
    plugin = types.SimpleNamespace(evalwire_discovr=lambda config: [])
    with pytest.raises(PluginError, match="did you mean 'evalwire_discover'"):
        Plugins.load(extra=[("typo", plugin)], autoload=False)


def test_an_empty_dataset_is_an_error_not_a_pass(tmp_path: Path) -> None:
    with pytest.raises(ExperimentsFailed) as caught:
        ExperimentRunner(experiment(tmp_path, rows=0), plugin_args=["no:console"]).run()
    (result,) = caught.value.results
    assert result.status == "error" and "no examples" in (result.error or "")
