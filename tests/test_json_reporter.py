"""The ``json`` reporter: ``--json PATH`` writes one document with every experiment and run.

The hooks are called directly, in the order the session calls them, with real
Config, Session, Experiment and Run objects, and real files in ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from evalwire.builtin import json as json_reporter
from evalwire.config import Config, OptionParser
from evalwire.models import Evaluation, Example, ExperimentResult, ExperimentSpec, Run
from evalwire.plugins import Plugins
from evalwire.session import Experiment, Session


def make_run(
    index: int,
    repetition: int = 1,
    *,
    output: Any = "ok",
    error: str | None = None,
    evaluations: Sequence[Evaluation] = (Evaluation("acc", score=1.0),),
) -> Run:
    return Run(
        example=Example(str(index), {"q": index}, {"a": index}),
        repetition=repetition,
        output=output,
        error=error,
        started_at=100.0 + index,
        ended_at=101.0 + index,
        evaluations=tuple(evaluations),
        index=index,
    )


def replay(
    config: Config,
    experiments: dict[str, Sequence[Run]],
    *,
    broken: dict[str, str] | None = None,
    exitstatus: int = 0,
) -> int | None:
    """Call the reporter's hooks as a session running ``experiments`` would."""
    session = Session(config, Plugins())
    session.specs = [ExperimentSpec(name, task=None) for name in experiments]
    session.started_at = time.time()
    json_reporter.evalwire_session_start(session)
    results = []
    for spec in session.specs:
        result = ExperimentResult(
            id=f"id-{spec.name}",
            name=spec.name,
            experiment_name=f"eval_{spec.name}",
            dataset=spec.name,
            started_at=time.time(),
            total=len(experiments[spec.name]),
        )
        experiment = Experiment(spec, config, result)
        if broken and spec.name in broken:
            result.status, result.error = "error", broken[spec.name]
        json_reporter.evalwire_experiment_start(experiment)
        for run in experiments[spec.name]:
            result.record(run)
            json_reporter.evalwire_run_complete(experiment, run)
        result.ended_at = time.time()
        if result.status == "passed" and (result.task_errors or result.evaluation_errors):
            result.status = "failed"
        results.append(result)
    return json_reporter.evalwire_session_finish(session, results, exitstatus)


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject)


def _reject(token: str) -> None:
    raise AssertionError(f"not strict JSON: {token}")


# -- the option --------------------------------------------------------------


def test_json_option_is_added_as_json_path_and_builds_a_click_option():
    parser = OptionParser()
    json_reporter.evalwire_addoption(parser)

    (option,) = parser.options
    assert "--json" in option.decls
    assert option.dest == "json_path"
    built = click.Option(list(option.decls), **option.attrs)
    assert built.name == "json_path"
    assert built.default is None


def test_module_json_imports_the_standard_library_json():
    assert json_reporter.json is json


# -- the document ------------------------------------------------------------


def test_nothing_is_written_without_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert replay(Config(), {"qa": [make_run(0)]}) is None
    assert list(tmp_path.iterdir()) == []


def test_document_has_version_times_and_exit_status(tmp_path):
    path = tmp_path / "results.json"
    before = time.time()

    replay(Config(options={"json_path": str(path)}), {"qa": [make_run(0)]}, exitstatus=1)

    document = read(path)
    assert isinstance(document["evalwire_version"], str) and document["evalwire_version"]
    assert before <= document["started_at"] <= document["finished_at"] <= time.time()
    assert document["exit_status"] == 1


def test_each_experiment_is_its_result_summary_plus_its_runs(tmp_path):
    path = tmp_path / "results.json"

    replay(
        Config(options={"json_path": str(path)}),
        {
            "qa": [make_run(0), make_run(1, error="ValueError: no", evaluations=())],
            "chat": [make_run(0)],
        },
    )

    qa, chat = read(path)["experiments"]
    assert (qa["name"], qa["status"], qa["completed"], qa["task_errors"]) == ("qa", "failed", 2, 1)
    assert qa["scores"] == {"acc": {"mean": 1.0, "count": 1, "errors": 0}}
    assert [r["example_id"] for r in qa["runs"]] == ["0", "1"]
    assert (chat["name"], len(chat["runs"])) == ("chat", 1)


def test_runs_are_in_index_and_repetition_order_whatever_order_they_completed_in(tmp_path):
    path = tmp_path / "results.json"
    completed = [make_run(2, 1), make_run(0, 2), make_run(1, 1), make_run(0, 1), make_run(2, 2)]

    replay(Config(options={"json_path": str(path)}), {"qa": completed})

    runs = read(path)["experiments"][0]["runs"]
    assert [(r["index"], r["repetition"]) for r in runs] == [(0, 1), (0, 2), (1, 1), (2, 1), (2, 2)]


def test_each_run_carries_its_example_output_and_evaluations(tmp_path):
    path = tmp_path / "results.json"
    evaluations = (
        Evaluation("acc", score=0.5, label="half", explanation="close"),
        Evaluation("judge", error="KeyError: 'x'"),
    )

    replay(Config(options={"json_path": str(path)}), {"qa": [make_run(3, evaluations=evaluations)]})

    (run,) = read(path)["experiments"][0]["runs"]
    assert (run["input"], run["expected"], run["output"]) == ({"q": 3}, {"a": 3}, "ok")
    assert run["evaluations"] == [
        {
            "name": "acc",
            "score": 0.5,
            "label": "half",
            "explanation": "close",
            "metadata": {},
            "error": None,
            "annotator_kind": "CODE",
        },
        {
            "name": "judge",
            "score": None,
            "label": None,
            "explanation": None,
            "metadata": {},
            "error": "KeyError: 'x'",
            "annotator_kind": "CODE",
        },
    ]


def test_output_json_cannot_hold_is_written_as_its_repr(tmp_path):
    class Answer:
        def __repr__(self) -> str:
            return "Answer(42)"

    path = tmp_path / "results.json"

    replay(Config(options={"json_path": str(path)}), {"qa": [make_run(0, output=Answer())]})

    assert read(path)["experiments"][0]["runs"][0]["output"] == "Answer(42)"


def test_odd_keys_and_non_finite_numbers_still_make_strict_json(tmp_path):
    path = tmp_path / "results.json"
    output = {("a", 1): "tuple key", "score": math.nan, "big": math.inf}

    replay(Config(options={"json_path": str(path)}), {"qa": [make_run(0, output=output)]})

    written = read(path)["experiments"][0]["runs"][0]["output"]
    assert written == {"('a', 1)": "tuple key", "score": None, "big": None}


def test_experiment_that_could_not_run_has_its_error_and_no_runs(tmp_path):
    path = tmp_path / "results.json"

    replay(
        Config(options={"json_path": str(path)}),
        {"lost": []},
        broken={"lost": "dataset 'lost' not found"},
    )

    (lost,) = read(path)["experiments"]
    assert (lost["status"], lost["error"], lost["runs"]) == (
        "error",
        "dataset 'lost' not found",
        [],
    )


def test_each_session_writes_only_its_own_runs(tmp_path):
    config = Config(options={"json_path": str(tmp_path / "results.json")})
    replay(config, {"qa": [make_run(0), make_run(1)]})

    replay(config, {"qa": [make_run(5)]})

    runs = read(tmp_path / "results.json")["experiments"][0]["runs"]
    assert [r["index"] for r in runs] == [5]


# -- where it goes -----------------------------------------------------------


def test_relative_path_is_relative_to_the_current_folder_and_folders_are_created(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)

    replay(
        Config(root=tmp_path / "elsewhere", options={"json_path": "out/deep/r.json"}), {"qa": []}
    )

    assert read(tmp_path / "out" / "deep" / "r.json")["experiments"][0]["name"] == "qa"


def test_path_from_the_config_file_is_relative_to_the_project_root(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")

    replay(Config(root=tmp_path, settings={"json_path": "results.json"}), {"qa": []})

    assert (tmp_path / "results.json").is_file()
    assert not (tmp_path / "sub" / "results.json").exists()


def test_existing_file_is_replaced_and_no_temporary_file_is_left(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old", encoding="utf-8")

    replay(Config(options={"json_path": str(path)}), {"qa": [make_run(0)]})

    assert read(path)["experiments"][0]["name"] == "qa"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


# -- when it cannot be written -----------------------------------------------


def test_unwritable_path_returns_exit_status_1_and_names_the_path(tmp_path, capsys):
    (tmp_path / "a_file").write_text("", encoding="utf-8")
    path = tmp_path / "a_file" / "results.json"  # a folder that is a file

    status = replay(Config(options={"json_path": str(path)}), {"qa": [make_run(0)]})

    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith(f"evalwire: cannot write JSON results to {path}: ")
    assert len(err.splitlines()) == 1


def test_path_that_is_a_folder_fails_cleanly_leaving_no_temporary_file(tmp_path, capsys):
    folder = tmp_path / "results.json"
    folder.mkdir()

    status = replay(Config(options={"json_path": str(folder)}), {"qa": [make_run(0)]})

    assert status == 1
    assert str(folder) in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert list(folder.iterdir()) == []
