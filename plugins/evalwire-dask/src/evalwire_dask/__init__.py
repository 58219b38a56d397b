"""evalwire-dask: run evalwire's units of work on a Dask distributed cluster.

``evalwire run --executor dask`` (with ``--dask-address tcp://HOST:8786`` or
``[dask] address`` for an existing cluster). The modules:

- :mod:`evalwire_dask.plugin` the hooks: ``--dask-address``, ``[dask]``, making the executor;
- :mod:`evalwire_dask.cluster` connecting to a scheduler or starting a local cluster;
- :mod:`evalwire_dask.executor` :class:`DaskExecutor`: batches in flight, results, faults;
- :mod:`evalwire_dask.worker` what runs on the workers;
- :mod:`evalwire_dask.wire` what travels between them, and how it is pickled.

Nothing here imports Dask until an executor is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalwire_dask.executor import DaskExecutor, DaskExecutorError

__all__ = ["DaskExecutor", "DaskExecutorError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        from evalwire_dask import executor

        return getattr(executor, name)
    raise AttributeError(f"module 'evalwire_dask' has no attribute {name!r}")
