"""Reaching a Dask cluster: connect to a scheduler, or start a local cluster on 127.0.0.1.

What a user can get wrong here (an address without a port, a scheduler that
does not answer, a module to send by value that does not import) is a
:class:`~evalwire.errors.UsageError` with one sentence saying which.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import Any

import cloudpickle
from distributed import Client
from evalwire.errors import UsageError


def connect(
    address: str | None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    connect_timeout: float = 10.0,
    pickle_by_value: Sequence[str] = (),
) -> tuple[Client, Any]:
    """A client of the scheduler at ``address``, and the local cluster started if none.

    ``pickle_by_value`` names modules the workers cannot import (installed
    only on this machine): cloudpickle sends their functions by value.
    """
    for module in pickle_by_value:
        try:
            cloudpickle.register_pickle_by_value(importlib.import_module(module))
        except ImportError as exc:
            raise UsageError(f"[dask] pickle_by_value: cannot import '{module}': {exc}") from exc
    if address is None:
        cluster = local_cluster(n_workers, threads_per_worker)
        try:
            return Client(cluster, timeout=connect_timeout, set_as_default=False), cluster
        except BaseException:
            cluster.close(timeout=connect_timeout)
            raise
    check_address(address)
    try:
        return Client(address, timeout=connect_timeout, set_as_default=False), None
    except Exception as exc:
        raise UsageError(
            f"cannot connect to the Dask scheduler at {address} within "
            f"{connect_timeout:g} s ({type(exc).__name__}: {exc}); start one with "
            "`dask scheduler`, or leave --dask-address out to run a local cluster"
        ) from None


def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, **scheduler_options: Any) -> Any:
    """A :class:`distributed.LocalCluster` of worker processes on 127.0.0.1, no dashboard.

    ``scheduler_options`` go to the scheduler (``allowed_failures=0``).
    """
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # No dashboard, and the scheduler's HTTP server (health checks) on a
        # free loopback port rather than the well-known 8787.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0", **scheduler_options},
        silence_logs=logging.ERROR,
    )


def check_address(address: str) -> None:
    """Refuse an address Dask would spend its whole connect timeout failing to parse."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as exc:
        raise UsageError(
            f"Dask scheduler address {address!r} is not tcp://HOST:PORT ({exc})"
        ) from None
