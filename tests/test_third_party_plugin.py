"""A third-party plugin, installed as its own distribution, as a plugin author ships one.

The ``evalwire-acme`` distribution is built from source in ``tmp_path`` and
installed with pip into a folder put on ``PYTHONPATH``; evalwire finds it
through the ``evalwire`` entry-point group, like its own built-ins. Its module
adds an experiment built in code (discoverer), serves that experiment's
dataset (loader), writes a report file (reporter), and marks its import with
a file, so a test can tell a blocked plugin was never imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import (
    Result,
    environment,
    evalwire,
    evalwire_json,
    experiment_results,
    plugin_infos,
    runs_of,
    write,
    write_experiment,
)

DISTRIBUTION = "evalwire-acme"
VERSION = "0.3.1"
IMPORTED = "acme-imported.txt"  # written (in the current folder) when the module is imported
REPORT = "acme-report.txt"  # written by the plugin's reporter hook

ACME_MODULE = '''
"""acme: evalwire experiments and datasets defined in code."""

from pathlib import Path

import evalwire
from evalwire import Dataset, Example, ExperimentSpec

with Path("acme-imported.txt").open("a") as _fh:
    _fh.write("imported\\n")

NAMES = ("Ada", "Grace", "Linus")


def greet(input):
    return f"Hello, {input['name']}!"


def polite(output):
    return output.startswith("Hello")


@evalwire.hookimpl
def evalwire_discover(config):
    return [
        ExperimentSpec(
            name="acme-greeting",
            task=greet,
            evaluators={"polite": polite},
            dataset="acme-greetings",
            metadata={"made_by": "acme"},
        )
    ]


@evalwire.hookimpl
def evalwire_load_dataset(spec, config):
    # Every dataset named acme-* is served from code, wherever else it may exist.
    if not spec.dataset_name.startswith("acme-"):
        return None
    examples = [Example(f"acme{i}", {"name": name}) for i, name in enumerate(NAMES)]
    return Dataset(spec.dataset_name, examples, version="acme-1")


@evalwire.hookimpl
def evalwire_experiment_finish(experiment, result):
    with Path("acme-report.txt").open("a") as fh:
        fh.write(f"{result.name} {result.status} {result.completed}\\n")
'''


def build_and_install(
    root: Path, project: str, version: str, module: str, source: str, entry_point: str
) -> Path:
    """Build distribution ``project`` from source and pip-install it into ``root/site``."""
    package = root / "src"
    write(
        package / "pyproject.toml",
        f"""
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "{project}"
        version = "{version}"
        dependencies = ["evalwire"]

        [project.entry-points.evalwire]
        {entry_point} = "{module}"

        [tool.hatch.build.targets.wheel]
        only-include = ["{module}.py"]
        """,
    )
    (package / f"{module}.py").write_text(source, encoding="utf-8")
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Offline: no index, no dependencies, hatchling from this venv.
    pip += ["--no-index", "--no-deps", "--no-build-isolation", "--target", str(site)]
    done = subprocess.run([*pip, str(package)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"pip could not install {project}:\n{done.stdout}{done.stderr}"
    return site


@pytest.fixture(scope="module")
def acme_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder holding the installed ``evalwire-acme`` distribution."""
    root = tmp_path_factory.mktemp("acme")
    return build_and_install(root, DISTRIBUTION, VERSION, "acme_evalwire", ACME_MODULE, "acme")


@pytest.fixture
def env(acme_site: Path) -> dict[str, str]:
    return environment(pythonpath=[acme_site])


def report(tmp_path: Path) -> list[str]:
    path = tmp_path / REPORT
    return sorted(path.read_text().splitlines()) if path.exists() else []


def local_experiment(tmp_path: Path) -> Path:
    """An experiments folder with one directory experiment, ``acme-local``.

    Its own ``dataset.jsonl`` has one row; the acme loader serves three rows
    for every ``acme-*`` dataset, so the run count says which loader answered.
    """
    experiments = tmp_path / "experiments"
    write_experiment(
        experiments,
        "acme-local",
        task="def task(input):\n    return input['name']\n",
        evaluators={"nonempty": "def nonempty(output):\n    return bool(output)\n"},
        dataset=[{"id": "local0", "input": {"name": "Local"}, "expected": {}}],
    )
    return experiments


def assert_not_imported(tmp_path: Path, result: Result) -> None:
    assert not (tmp_path / IMPORTED).exists(), f"acme was imported\n{result.transcript}"


# -- the installed plugin takes part -----------------------------------------------------


def test_installed_plugin_is_listed_with_its_distribution_version_and_hooks(
    tmp_path: Path, env: dict[str, str]
) -> None:
    infos = plugin_infos(cwd=tmp_path, env=env)

    assert infos["acme"] == {
        "name": "acme",
        "distribution": DISTRIBUTION,
        "version": VERSION,
        "hooks": ["evalwire_discover", "evalwire_experiment_finish", "evalwire_load_dataset"],
    }
    assert infos["dirs"]["distribution"] == "evalwire"
    # Listing imports it: the marker file the blocking tests look for is real.
    assert (tmp_path / IMPORTED).read_text() == "imported\n"


def test_installed_plugin_hooks_are_called(tmp_path: Path, env: dict[str, str]) -> None:
    experiments = local_experiment(tmp_path)

    result, doc = evalwire_json("run", "-e", experiments, cwd=tmp_path, env=env)

    assert result.returncode == 0, result.transcript
    by_name = {e["name"]: e for e in experiment_results(doc)}
    greeting = by_name["acme-greeting"]
    assert (greeting["status"], greeting["dataset"]) == ("passed", "acme-greetings")
    assert greeting["scores"]["polite"]["mean"] == 1.0
    assert greeting["metadata"]["made_by"] == "acme"
    assert [r["output"] for r in runs_of(doc, "acme-greeting")] == [
        "Hello, Ada!",
        "Hello, Grace!",
        "Hello, Linus!",
    ]
    # The reporter hears every experiment, its own and the directory's.
    assert report(tmp_path) == ["acme-greeting passed 3", "acme-local passed 3"]


def test_installed_discoverer_runs_without_an_experiments_folder_when_dirs_is_blocked(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = evalwire("-p", "no:dirs", "run", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.transcript
    assert not (tmp_path / "experiments").exists()
    assert report(tmp_path) == ["acme-greeting passed 3"]
    assert "acme-greeting" in result.stdout


def test_installed_loader_answers_before_the_default_files_loader(
    tmp_path: Path, env: dict[str, str]
) -> None:
    experiments = local_experiment(tmp_path)

    result, doc = evalwire_json(
        "run", "-e", experiments, "--name", "acme-local", cwd=tmp_path, env=env
    )
    blocked, blocked_doc = evalwire_json(
        "-p", "no:acme", "run", "-e", experiments, cwd=tmp_path, env=env
    )

    assert result.returncode == 0, result.transcript
    assert [r["example_id"] for r in runs_of(doc, "acme-local")] == ["acme0", "acme1", "acme2"]
    # Without the plugin the default loader still serves the folder's own file.
    assert blocked.returncode == 0, blocked.transcript
    assert [r["example_id"] for r in runs_of(blocked_doc, "acme-local")] == ["local0"]


# -- keeping it out ------------------------------------------------------------------------


def test_blocked_plugin_is_not_listed_and_not_imported(tmp_path: Path, env: dict[str, str]) -> None:
    infos = plugin_infos("-p", "no:acme", cwd=tmp_path, env=env)

    assert "acme" not in infos
    assert {"dirs", "files", "callables", "threads"} <= set(infos)
    assert not (tmp_path / IMPORTED).exists()


def test_blocked_plugin_hooks_are_not_called(tmp_path: Path, env: dict[str, str]) -> None:
    experiments = local_experiment(tmp_path)

    result, doc = evalwire_json("-p", "no:acme", "run", "-e", experiments, cwd=tmp_path, env=env)

    assert result.returncode == 0, result.transcript
    assert [e["name"] for e in experiment_results(doc)] == ["acme-local"]
    assert report(tmp_path) == []
    assert_not_imported(tmp_path, result)


def test_disabled_autoload_keeps_the_plugin_out_and_builtins_working(
    tmp_path: Path, acme_site: Path
) -> None:
    env = environment(pythonpath=[acme_site], EVALWIRE_DISABLE_PLUGIN_AUTOLOAD="1")
    experiments = local_experiment(tmp_path)

    infos = plugin_infos(cwd=tmp_path, env=env)
    result, doc = evalwire_json("run", "-e", experiments, cwd=tmp_path, env=env)

    assert "acme" not in infos
    assert {"dirs", "files", "callables", "threads", "console", "json"} <= set(infos)
    assert result.returncode == 0, result.transcript
    assert [r["example_id"] for r in runs_of(doc, "acme-local")] == ["local0"]
    assert report(tmp_path) == []
    assert_not_imported(tmp_path, result)


def test_disabled_autoload_still_loads_a_plugin_module_named_with_p(
    tmp_path: Path, acme_site: Path
) -> None:
    env = environment(pythonpath=[acme_site], EVALWIRE_DISABLE_PLUGIN_AUTOLOAD="1")

    result = evalwire("-p", "no:dirs", "-p", "acme_evalwire", "run", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.transcript
    assert report(tmp_path) == ["acme-greeting passed 3"]


# -- a broken plugin -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder holding ``evalwire-kaput``, whose plugin module raises at import."""
    root = tmp_path_factory.mktemp("kaput")
    source = 'raise RuntimeError("kaput needs a licence key")\n'
    return build_and_install(root, "evalwire-kaput", "2.0.0", "kaput_evalwire", source, "kaput")


def test_plugin_failing_to_import_is_a_usage_error_naming_plugin_and_distribution(
    tmp_path: Path, broken_site: Path
) -> None:
    env = environment(pythonpath=[broken_site])
    write_experiment(tmp_path / "experiments", "echo")

    result = evalwire("run", "-e", "experiments", cwd=tmp_path, env=env)

    assert result.returncode == 2, result.transcript
    assert "Traceback" not in result.output, result.transcript
    for words in (
        "'kaput'",
        "evalwire-kaput",
        "RuntimeError: kaput needs a licence key",
        "-p no:kaput",
    ):
        assert words in result.stderr, f"{words!r} not in stderr\n{result.transcript}"


def test_broken_plugin_can_be_blocked(tmp_path: Path, broken_site: Path) -> None:
    env = environment(pythonpath=[broken_site])
    write_experiment(tmp_path / "experiments", "echo")

    result = evalwire("-p", "no:kaput", "run", "-e", "experiments", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.transcript


def test_broken_plugin_is_kept_out_by_disabled_autoload(tmp_path: Path, broken_site: Path) -> None:
    env = environment(pythonpath=[broken_site], EVALWIRE_DISABLE_PLUGIN_AUTOLOAD="1")

    result = evalwire("plugins", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.transcript
    assert "kaput" not in result.stdout
