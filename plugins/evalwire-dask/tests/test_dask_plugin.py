"""The plugin's face: registration, the option, ``[dask]`` settings, errors a user can cause."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from evalwire.config import Config
from evalwire.errors import UsageError

from evalwire_dask import plugin

if TYPE_CHECKING:
    from evalwire.testing import EvalwireProject

pytest_plugins = ["evalwire.testing"]


def evalwire(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evalwire", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    result = evalwire("plugins", "--json")

    assert result.returncode == 0, result.stderr
    [info] = [i for i in json.loads(result.stdout) if i["name"] == "dask"]
    assert info["distribution"] == "evalwire-dask"
    assert {"evalwire_addoption", "evalwire_make_executor"} <= set(info["hooks"])


def test_run_offers_dask_address() -> None:
    result = evalwire("run", "--help")

    assert "--dask-address ADDRESS" in result.stdout


def test_loading_the_plugin_does_not_import_dask() -> None:
    code = (
        "import sys, evalwire.cli, evalwire.plugins as p; p.Plugins.load(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.stdout.strip() == "[]", result.stderr


def test_other_executors_are_left_to_other_plugins() -> None:
    assert plugin.evalwire_make_executor(Config(executor="threads")) is None


def test_the_address_comes_from_the_option_before_the_config_file() -> None:
    config = Config(
        executor="dask",
        settings={"dask": {"address": "tcp://file:8786", "batch_size": 20}},
        options={"dask_address": "tcp://option:8786"},
    )

    assert plugin.dask_settings(config) == {"address": "tcp://option:8786", "batch_size": 20}
    config.options = {}
    assert plugin.dask_settings(config)["address"] == "tcp://file:8786"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"batch_size": "50"}, "'batch_size' must be int"),
        ({"batch_size": 0}, "'batch_size' must be at least 1"),
        ({"stall_timeout": -1}, "'stall_timeout' must not be negative"),
        ({"adress": "tcp://x:1"}, "unknown setting(s) adress"),
        ({"pickle_by_value": "mypkg"}, "'pickle_by_value' must be list"),
    ],
)
def test_a_bad_dask_setting_is_a_usage_error(table: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plugin.dask_settings(Config(executor="dask", settings={"dask": table}))


def test_a_bad_dask_setting_exits_2_naming_the_file(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: Any
) -> None:
    evalwire_project.config("[dask]\nbatch_size = 'many'\n")
    evalwire_project.experiment("echo", rows=[{"input": {"x": 1}}])

    outcome = run_evalwire_subprocess(evalwire_project, "--executor", "dask")

    outcome.assert_exit(2)
    assert "evalwire.toml [dask]: 'batch_size' must be int" in outcome.stderr


def test_an_unreachable_scheduler_exits_2_naming_its_address(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: Any
) -> None:
    from dask_cluster import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    evalwire_project.config("[dask]\nconnect_timeout = 1\n")
    evalwire_project.experiment("echo", rows=[{"input": {"x": 1}}])

    outcome = run_evalwire_subprocess(
        evalwire_project, "--executor", "dask", "--dask-address", address
    )

    outcome.assert_exit(2)
    assert f"cannot connect to the Dask scheduler at {address}" in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_dask_address_without_the_dask_executor_is_a_usage_error(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: Any
) -> None:
    evalwire_project.experiment("echo", rows=[{"input": {"x": 1}}])

    outcome = run_evalwire_subprocess(evalwire_project, "--dask-address", "tcp://127.0.0.1:1")

    outcome.assert_exit(2)
    assert "add --executor dask" in outcome.stderr


def test_an_address_without_a_port_exits_2(
    evalwire_project: EvalwireProject, run_evalwire_subprocess: Any
) -> None:
    evalwire_project.experiment("echo", rows=[{"input": {"x": 1}}])

    outcome = run_evalwire_subprocess(
        evalwire_project, "--executor", "dask", "--dask-address", "scheduler-host"
    )

    outcome.assert_exit(2)
    # Checked before connecting: Dask would retry for its whole connect timeout.
    assert "'scheduler-host' is not tcp://HOST:PORT" in outcome.stderr
