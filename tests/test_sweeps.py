"""Sweeps: matrices expand into arms, repeats into seeded replicates, and a pick."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalwire import ExperimentRunner
from evalwire.errors import UsageError
from evalwire.models import ExperimentSpec
from evalwire.sweeps import (
    ArmSummary,
    SweepSettings,
    arms,
    expand,
    parse_matrix,
    select,
    settings_for,
)

SPEC = ExperimentSpec("qa", task=None, params={"k": 3})


@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,5}", fullmatch=True),
        st.lists(st.integers(), min_size=1, max_size=4, unique=True),
        max_size=4,
    )
)
def test_a_matrix_expands_to_every_combination_once(matrix: dict[str, list[int]]) -> None:
    got = arms(matrix)
    assert len(got) == math.prod(len(v) for v in matrix.values())
    combos = {tuple(arm[k] for k in matrix) for arm in got}
    assert combos == set(itertools.product(*matrix.values()))


def test_command_line_values_read_as_numbers_or_strings() -> None:
    assert parse_matrix(["model=small,large", "t=0,0.7", "on=true"]) == {
        "model": ["small", "large"],
        "t": [0, 0.7],
        "on": [True],
    }


def test_a_malformed_matrix_option_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="KEY=V1,V2"):
        parse_matrix(["model"])


def test_each_arm_is_its_own_spec_named_with_its_parameters() -> None:
    specs = expand(SPEC, SweepSettings(matrix={"model": ["a", "b"]}))
    assert [s.name for s in specs] == ["qa[model=a]", "qa[model=b]"]
    assert [s.params for s in specs] == [
        {"k": 3, "model": "a", "seed": 0},
        {"k": 3, "model": "b", "seed": 0},
    ]
    assert all(s.family == "qa" and s.dataset_name == "qa" for s in specs)
    assert specs[0].metadata["arm"] == {"model": "a"}


def test_replicates_get_consecutive_seeds_and_share_a_group() -> None:
    specs = expand(SPEC, SweepSettings(matrix={"model": ["a", "b"]}, repeats=3, seed=10))
    a = [s for s in specs if s.arm == {"model": "a"}]
    assert [s.params["seed"] for s in a] == [10, 11, 12]
    assert [s.replicate for s in a] == [1, 2, 3] and len({s.group for s in a}) == 1
    assert len({s.group for s in specs}) == 2
    assert a[1].name == "qa[model=a]#2"


def test_an_arm_filter_keeps_only_matching_arms() -> None:
    specs = expand(SPEC, SweepSettings(matrix={"model": ["a", "b"], "t": [0, 1]}), {"t": 1})
    assert [s.arm for s in specs] == [{"model": "a", "t": 1}, {"model": "b", "t": 1}]


def test_command_line_sweep_settings_beat_the_config_table() -> None:
    table: dict[str, Any] = {"matrix": {"model": ["a"]}, "repeats": 2, "select": "acc"}
    sweep = settings_for(table, matrix={"t": [0, 1]}, repeats=3)
    assert sweep.matrix == {"model": ["a"], "t": [0, 1]} and sweep.repeats == 3
    assert sweep.select == "acc" and sweep.mode == "max"


def row(label: str, mean: float | None, std: float = 0.0, replicates: int = 3) -> ArmSummary:
    arm = ArmSummary(arm={"m": label}, label=label, replicates=replicates)
    if mean is not None:
        arm.means["acc"], arm.stdevs["acc"] = mean, std
    return arm


def test_selection_names_the_best_arm_and_whether_it_beats_the_noise() -> None:
    pick = select([row("a", 0.6, 0.01), row("b", 0.8, 0.02)], "acc")
    assert pick.best == "b" and pick.runner_up == "a" and pick.significant
    assert "adopt b" in pick.conclusion


def test_a_margin_within_the_noise_is_called_unreliable() -> None:
    pick = select([row("a", 0.70, 0.1), row("b", 0.72, 0.1)], "acc")
    assert pick.best == "b" and not pick.significant and "not reliable" in pick.conclusion


def test_ties_go_to_the_first_arm_and_say_so() -> None:
    pick = select([row("a", 0.5), row("b", 0.5)], "acc")
    assert pick.best == "a" and "ties with b" in pick.conclusion


def test_min_mode_picks_the_lowest() -> None:
    assert select([row("a", 0.2), row("b", 0.1)], "acc", mode="min").best == "b"


def test_all_error_arms_are_never_picked() -> None:
    assert select([row("a", None), row("b", 0.3)], "acc").best == "b"
    none = select([row("a", None), row("b", None)], "acc")
    assert none.best is None and "none can be chosen" in none.conclusion


def write_experiment(root: Path) -> Path:
    folder = root / "experiments" / "qa"
    folder.mkdir(parents=True)
    (folder / "task.py").write_text(
        "import random\n"
        "def task(input, params):\n"
        "    if params['model'] == 'broken':\n"
        "        raise RuntimeError('down')\n"
        "    rng = random.Random(f\"{params['seed']}:{input['n']}\")\n"
        "    good = 0.9 if params['model'] == 'large' else 0.5\n"
        "    return rng.random() < good\n"
    )
    (folder / "acc.py").write_text("def acc(output):\n    return output\n")
    (folder / "dataset.jsonl").write_text(
        "".join(json.dumps({"input": {"n": i}}) + "\n" for i in range(40))
    )
    return root / "experiments"


def test_the_api_returns_every_arm_and_replicate_and_the_selection(tmp_path: Path) -> None:
    results = ExperimentRunner(
        write_experiment(tmp_path),
        plugin_args=["no:console", "no:sweep"],
        matrix={"model": ["small", "large"]},
        repeats=3,
        select="acc",
        concurrency=2,
    ).run()
    assert len(results) == 6
    assert {(r.arm["model"], r.replicate) for r in results} == {
        (m, k) for m in ("small", "large") for k in (1, 2, 3)
    }
    (summary,) = results.sweeps
    assert summary.selection is not None and summary.selection.best == "model=large"


def test_a_failing_arm_does_not_stop_the_others(tmp_path: Path) -> None:
    runner = ExperimentRunner(
        write_experiment(tmp_path),
        plugin_args=["no:console", "no:sweep"],
        matrix={"model": ["broken", "large"]},
        select="acc",
        retries=0,
    )
    with pytest.raises(SystemExit) as failed:
        runner.run()
    results = failed.value.results  # type: ignore[attr-defined]
    by_arm = {r.arm["model"]: r for r in results}
    assert by_arm["broken"].status == "failed" and by_arm["large"].status == "passed"
