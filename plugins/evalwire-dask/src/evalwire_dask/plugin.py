"""The ``dask`` plugin: ``evalwire run --executor dask [--dask-address tcp://host:8786]``.

Settings come from the command line (``--dask-address``) and the ``[dask]``
table of ``evalwire.toml``. Without an address a local cluster starts on
127.0.0.1 for the session. Dask is imported only when the executor is made,
so ``evalwire --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalwire.config import Config, OptionParser
from evalwire.errors import UsageError
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from evalwire_dask.executor import DaskExecutor

NAME = "dask"

#: The keys of ``[dask]``, with the types they take.
SETTINGS: dict[str, tuple[type, ...]] = {
    "address": (str,),
    "n_workers": (int,),
    "threads_per_worker": (int,),
    "batch_size": (int,),
    "max_in_flight": (int,),
    "prefetch": (int,),
    "retries": (int,),
    "stall_timeout": (int, float),
    "no_workers_timeout": (int, float),
    "connect_timeout": (int, float),
    "pickle_by_value": (list,),
}
_POSITIVE = ("n_workers", "threads_per_worker", "batch_size", "max_in_flight", "prefetch")
_NON_NEGATIVE = ("retries", "stall_timeout", "no_workers_timeout", "connect_timeout")


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--dask-address",
        dest="dask_address",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler to run units on with --executor dask "
        "(default: [dask] address, else a local cluster).",
    )


@hookimpl
def evalwire_configure(config: Config) -> None:
    settings = dask_settings(config)
    if config.options.get("dask_address") and config.executor != NAME:
        raise UsageError(
            f"--dask-address is given but the executor is '{config.executor}'; add --executor dask"
        )
    config.stash[NAME] = settings


@hookimpl
def evalwire_make_executor(config: Config) -> DaskExecutor | None:
    if config.executor != NAME:
        return None
    settings = config.stash.get(NAME)
    if settings is None:
        settings = dask_settings(config)
    from evalwire_dask.executor import DaskExecutor

    return DaskExecutor.start(**settings)


def dask_settings(config: Config) -> dict[str, Any]:
    """``[dask]`` checked, with ``--dask-address`` over its ``address``.

    A key of the wrong type or an unknown key is a :class:`UsageError` naming
    the config file.
    """
    table = dict(config.section(NAME))
    source = f"{config.config_path or 'config'} [dask]"
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        raise UsageError(
            f"{source}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(SETTINGS))}"
        )
    for key, value in table.items():
        _check(source, key, value)
    address = config.getoption("dask_address") or table.pop("address", None)
    table.pop("address", None)
    return {"address": address, **table}


def _check(source: str, key: str, value: Any) -> None:
    types = SETTINGS[key]
    fits = isinstance(value, types) and not isinstance(value, bool)
    if not fits:
        wanted = " or ".join("number" if t is float else t.__name__ for t in types)
        raise UsageError(f"{source}: '{key}' must be {wanted}, not {value!r}")
    if key in _POSITIVE and value < 1:
        raise UsageError(f"{source}: '{key}' must be at least 1, not {value}")
    if key in _NON_NEGATIVE and value < 0:
        raise UsageError(f"{source}: '{key}' must not be negative, not {value}")
    if key == "pickle_by_value" and not all(isinstance(v, str) for v in value):
        raise UsageError(f"{source}: 'pickle_by_value' must be a list of module names")
