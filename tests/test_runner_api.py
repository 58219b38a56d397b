"""The Python API: ExperimentRunner runs a folder and returns or raises results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalwire import ExperimentRunner
from evalwire.errors import ExperimentsFailed, UsageError

QUIET = ("no:console", "no:json")


def experiment(root: Path, name: str, task: str, rows: int = 4, **files: str) -> None:
    folder = root / "experiments" / name
    folder.mkdir(parents=True)
    (folder / "task.py").write_text(task, encoding="utf-8")
    for stem, source in files.items():
        (folder / f"{stem}.py").write_text(source, encoding="utf-8")
    with (folder / "dataset.jsonl").open("w") as fh:
        for i in range(rows):
            fh.write(
                json.dumps({"id": f"r{i}", "input": {"n": i}, "expected": {"n": i * 2}}) + "\n"
            )


DOUBLE = "async def task(input):\n    return input['n'] * 2\n"
EXACT = "def exact(output, expected):\n    return output == expected['n']\n"


def runner(root: Path, **kwargs: object) -> ExperimentRunner:
    return ExperimentRunner(root / "experiments", plugin_args=QUIET, retries=0, **kwargs)  # type: ignore[arg-type]


def test_run_returns_one_result_per_experiment_with_runs_in_example_order(tmp_path: Path) -> None:
    experiment(tmp_path, "double", DOUBLE, rows=20, exact=EXACT)
    (result,) = runner(tmp_path, task_concurrency=8).run()
    assert result.status == "passed" and result.mean("exact") == 1.0
    assert [r.example_id for r in result.runs] == [f"r{i}" for i in range(20)]


def test_experiment_names_carry_the_prefix_and_dataset(tmp_path: Path) -> None:
    experiment(tmp_path, "double", DOUBLE, exact=EXACT)
    (result,) = runner(tmp_path).run(experiment_name_prefix="nightly", metadata={"team": "qa"})
    assert result.experiment_name.startswith("nightly_double_20")
    assert result.metadata == {"team": "qa"}


def test_a_failure_raises_system_exit_1_after_every_experiment_finished(tmp_path: Path) -> None:
    experiment(tmp_path, "broken", "def task(input):\n    raise RuntimeError('model down')\n")
    experiment(tmp_path, "double", DOUBLE, exact=EXACT)
    with pytest.raises(ExperimentsFailed) as caught:
        runner(tmp_path, concurrency=2).run()
    assert isinstance(caught.value, SystemExit) and caught.value.code == 1
    by_name = {r.name: r for r in caught.value.results}
    assert by_name["broken"].status == "failed" and by_name["broken"].task_errors == 4
    assert by_name["double"].status == "passed"


def test_names_select_experiments_and_an_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    experiment(tmp_path, "a", DOUBLE)
    experiment(tmp_path, "b", DOUBLE)
    assert [r.name for r in runner(tmp_path).run(["b"])] == ["b"]
    with pytest.raises(UsageError, match="'c'"):
        runner(tmp_path).run(["c"])


def test_repetitions_run_each_example_that_many_times(tmp_path: Path) -> None:
    experiment(tmp_path, "double", DOUBLE, rows=3)
    (result,) = runner(tmp_path, repetitions=3).run()
    assert [(r.index, r.repetition) for r in result.runs] == [
        (i, k) for i in range(3) for k in (1, 2, 3)
    ]


def test_a_dry_run_samples_n_examples_reproducibly(tmp_path: Path) -> None:
    experiment(tmp_path, "double", DOUBLE, rows=30)
    first = runner(tmp_path, dry_run=5, seed=7).run()[0]
    second = runner(tmp_path, dry_run=5, seed=7).run()[0]
    assert first.dry_run and len(first.runs) == 5
    assert [r.example_id for r in first.runs] == [r.example_id for r in second.runs]


def test_a_dry_run_of_true_runs_one_example(tmp_path: Path) -> None:
    experiment(tmp_path, "double", DOUBLE, rows=30)
    assert len(runner(tmp_path, dry_run=True).run()[0].runs) == 1


def test_a_missing_dataset_fails_the_experiment_with_a_message(tmp_path: Path) -> None:
    experiment(tmp_path, "double", DOUBLE)
    (tmp_path / "experiments/double/dataset.jsonl").unlink()
    with pytest.raises(ExperimentsFailed) as caught:
        runner(tmp_path).run()
    (result,) = caught.value.results
    assert result.status == "error" and "double" in (result.error or "")


def test_an_in_process_plugin_object_is_registered_and_heard(tmp_path: Path) -> None:
    from evalwire import hookimpl

    seen: list[str] = []

    class Recorder:
        @hookimpl
        def evalwire_run_complete(self, experiment: object, run: object) -> None:
            seen.append(run.example_id)  # type: ignore[attr-defined]

    experiment(tmp_path, "double", DOUBLE, rows=5)
    runner(tmp_path, plugins=[("recorder", Recorder())]).run()
    assert sorted(seen) == [f"r{i}" for i in range(5)]


def test_a_resume_runs_only_what_the_record_lacks_and_keeps_its_id(tmp_path: Path) -> None:
    from evalwire import Evaluation, Example, hookimpl
    from evalwire.models import Resume, Run

    calls = tmp_path / "calls.txt"
    experiment(
        tmp_path,
        "double",
        f"def task(input):\n    open({str(calls)!r}, 'a').write(str(input['n']) + '\\n')\n"
        "    return input['n'] * 2\n",
        rows=5,
        exact=EXACT,
    )
    done = tuple(
        Run(
            Example(f"r{i}", {"n": i}, {"n": 2 * i}),
            1,
            2 * i,
            None,
            0.0,
            1.0,
            evaluations=(Evaluation("exact", score=1.0),),
            index=i,
        )
        for i in (0, 1, 2)
    )

    class Store:
        @hookimpl
        def evalwire_resume(self, experiment: object) -> Resume:
            return Resume("previous-id", done, started_at=123.0)

    (result,) = runner(tmp_path, plugins=[("fake-store", Store())]).run()
    # the in-process plugin answers only with --resume
    assert result.id != "previous-id"
    calls.unlink()
    (result,) = runner(tmp_path, plugins=[("fake-store", Store())], resume=True).run()
    assert sorted(calls.read_text().split()) == ["3", "4"]
    assert result.id == "previous-id" and result.started_at == 123.0
    assert result.completed == 5 and result.mean("exact") == 1.0
    assert [r.example_id for r in result.runs] == ["r0", "r1", "r2", "r3", "r4"]
