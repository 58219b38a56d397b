"""What runs on the Dask workers: unpickle an experiment's work once, run batches of units.

The client sends an experiment's :class:`~evalwire.unit.Work` as cloudpickled
bytes, once, as the result of a :func:`hold` task every batch depends on;
each batch task is :func:`run_batch`, which this module makes importable by
name on every worker (the plugin must be installed there). The work is
unpickled once per worker process and cached by its digest.

A batch runs its units on an event loop that belongs to the worker thread and
outlives the batch (never ``asyncio.run`` per batch, which breaks async
clients that keep connections on the loop), with up to ``work.concurrency``
units in flight and one :class:`~evalwire.unit.AdaptiveLimiter` per
experiment per thread, so a rate limit learned in one batch slows the next.

What comes back is pickled bytes too (see :mod:`evalwire_dask.wire`): the
runs without their examples, which the client has.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
from evalwire.executor import Unit
from evalwire.unit import AdaptiveLimiter, Work, describe, run_unit

from evalwire_dask import wire

#: Works kept unpickled per worker process (experiments running at once).
_CACHE_SIZE = 8


class WorkLoadError(RuntimeError):
    """The worker could not unpickle an experiment (a module it needs is missing)."""


_works: OrderedDict[str, Work] = OrderedDict()
_works_lock = threading.Lock()
_local = threading.local()


def hold(blob: bytes) -> bytes:
    """The experiment's pickled work, as a task result: Dask recomputes it if lost."""
    return blob


def load_work(digest: str, blob: bytes) -> Work:
    """The unpickled work for ``digest``, unpickled once per process."""
    # Under the lock: functions sent by value get their module globals anew
    # with each unpickling, and a client the task keeps in a global should
    # be one per process, shared by every batch.
    with _works_lock:
        work = _works.get(digest)
        if work is not None:
            _works.move_to_end(digest)
            return work
        try:
            work = cloudpickle.loads(blob)
        except Exception as exc:
            raise WorkLoadError(
                f"a Dask worker could not unpickle the experiment: {type(exc).__name__}: "
                f"{exc}. Install the modules the task and evaluators import on every worker, "
                "or list them in [dask] pickle_by_value"
            ) from exc
        if not isinstance(work, Work):  # pragma: no cover - only our client sends these
            raise WorkLoadError(f"expected evalwire Work, got {type(work).__name__}")
        _works[digest] = work
        while len(_works) > _CACHE_SIZE:
            _works.popitem(last=False)
    return work


class _ThreadState:
    """One worker thread's event loop, its thread pool for sync tasks, its limiters."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool_size = 0
        self.pool: ThreadPoolExecutor | None = None
        self.limiters: OrderedDict[str, AdaptiveLimiter] = OrderedDict()

    def ensure_pool(self, size: int) -> None:
        # Sync tasks run in the loop's default executor: as many threads as
        # units may be in flight, or they would queue behind each other.
        size = max(4, size)
        if size > self.pool_size:
            old = self.pool
            self.pool = ThreadPoolExecutor(size, thread_name_prefix="evalwire-dask-task")
            self.pool_size = size
            self.loop.set_default_executor(self.pool)
            if old is not None:
                old.shutdown(wait=False)

    def limiter(self, digest: str, maximum: int) -> AdaptiveLimiter:
        limiter = self.limiters.get(digest)
        if limiter is None:
            limiter = self.limiters[digest] = AdaptiveLimiter(maximum)
            while len(self.limiters) > _CACHE_SIZE:
                self.limiters.popitem(last=False)
        else:
            self.limiters.move_to_end(digest)
        return limiter


def _thread_state() -> _ThreadState:
    state: _ThreadState | None = getattr(_local, "state", None)
    if state is None or state.loop.is_closed():
        state = _local.state = _ThreadState()
    return state


def run_batch(blob: bytes, digest: str, batch: bytes) -> bytes:
    """Run the units in ``batch`` with the work in ``blob``; return their results.

    Called by Dask in a worker thread. Blocks that thread until every unit of
    the batch is done: Dask counts the batch as one running task.
    """
    work = load_work(digest, blob)
    units = wire.load_units(batch)
    state = _thread_state()
    state.ensure_pool(work.concurrency)
    limiter = state.limiter(digest, work.concurrency)
    rows = state.loop.run_until_complete(run_units(work, units, limiter))
    return wire.dump_rows(rows)


async def run_units(work: Work, units: Sequence[Unit], limiter: AdaptiveLimiter) -> list[wire.Row]:
    """Every unit of a batch, at most ``work.concurrency`` at once, in completion order."""
    rows: list[wire.Row] = []
    pending = iter(units)

    async def worker() -> None:
        for unit in pending:
            rows.append(await _run_one(work, unit, limiter))

    await asyncio.gather(*(worker() for _ in range(max(1, min(work.concurrency, len(units))))))
    return rows


async def _run_one(work: Work, unit: Unit, limiter: AdaptiveLimiter) -> wire.Row:
    started = time.time()
    try:
        run = await run_unit(work, unit, limiter)
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise
    except BaseException as exc:  # noqa: BLE001 - a task calling sys.exit() must not kill the batch
        return (unit.index, unit.repetition, None, describe(exc), started, time.time(), 1, ())
    return wire.row(run)
