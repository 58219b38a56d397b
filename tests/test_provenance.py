"""What the store's code hashes cover: a task's whole folder but its evaluators and dataset,
an evaluator's whole file, and the options of an evaluator built from evalwire.toml."""

from __future__ import annotations

from pathlib import Path

from clihelpers import write, write_experiment

from evalwire.builtin.dirs import load_experiment
from evalwire.config import build_config
from evalwire.evaluators import BUILTIN_EVALUATORS
from evalwire.models import ExperimentSpec
from evalwire.named_evaluators import build_named
from evalwire.store.provenance import code_hashes

TASK = """
PREFIX = "a"

def task(input):
    return PREFIX + str(input["x"])
"""
EXACT = """
THRESHOLD = 1

def exact(output, expected):
    return output == expected["x"]
"""


def hashes(folder: Path) -> tuple[str | None, dict[str, str | None]]:
    config = build_config({"experiments_dir": str(folder.parent)}, cwd=folder.parent.parent)
    return code_hashes(load_experiment(folder, config))


def test_the_task_hash_covers_its_module_helpers_and_files_but_not_evaluators_or_data(
    tmp_path: Path,
) -> None:
    folder = write_experiment(
        tmp_path / "experiments", "qa", task=TASK, evaluators={"exact": EXACT}
    )
    task_hash, evaluators = hashes(folder)
    assert task_hash and evaluators["exact"]

    def changed(edit: str) -> tuple[bool, bool]:
        new_task, new_evaluators = hashes(folder)
        return new_task != task_hash, new_evaluators != evaluators

    # Not the task's: the dataset (it has a version of its own), an evaluator file.
    (folder / "dataset.jsonl").write_text('{"input": {"x": 9}, "expected": {"x": 9}}\n')
    assert changed("dataset") == (False, False)
    write(folder / "exact.py", EXACT.replace("THRESHOLD = 1", "THRESHOLD = 2"))
    assert changed("an evaluator's constant") == (False, True)
    evaluators = hashes(folder)[1]
    # The task's: a module-level constant, a helper module, a prompt file, a subfolder.
    for edit, path, source in [
        ("a constant", "task.py", TASK.replace('"a"', '"b"')),
        ("a helper", "_helpers.py", "LIMIT = 3\n"),
        ("a prompt", "prompt.txt", "Answer briefly.\n"),
        ("a subfolder", "lib/tools.py", "def tool():\n    return 1\n"),
    ]:
        write(folder / path, source)
        assert changed(edit) == (True, False), edit
        task_hash = hashes(folder)[0]
    # Byte-code and hidden files are not code the user wrote.
    write(folder / "__pycache__" / "task.cpython-311.pyc", "x")
    write(folder / ".notes", "x")
    assert changed("caches") == (False, False)


def test_an_evaluator_from_evalwire_toml_hashes_with_its_options() -> None:
    def spec(**options: object) -> ExperimentSpec:
        entry = {"name": "em", "use": "exact_match", **options}
        built = build_named([entry], BUILTIN_EVALUATORS, "[experiments.qa]")
        return ExperimentSpec("qa", lambda input: input, built)

    plain = code_hashes(spec())[1]["em"]
    assert plain is not None
    assert code_hashes(spec())[1]["em"] == plain  # the same entry, the same hash
    assert code_hashes(spec(case_sensitive=False))[1]["em"] != plain
