"""The ``dask`` executor: units run in batches on a Dask distributed cluster.

The client (the process running ``evalwire``) pulls units lazily from the
session's iterator, groups them into batches (one Dask task each), keeps a
bounded number of batches in flight and yields each batch's runs as soon as
it completes. So a dataset of a million examples is never held in memory: at
most ``max_in_flight`` units are, however long the dataset.

User code travels once per experiment: the :class:`~evalwire.unit.Work` is
cloudpickled on the client (experiment modules are not in ``sys.modules``
after discovery, so their functions go by value) and submitted as the result
of one task every batch depends on; :mod:`evalwire_dask.worker` unpickles it
once per worker process. Left to Dask, the work would travel with every
batch, and objects of modules in ``sys.modules`` by reference, which a worker
may not be able to import.

Faults: Dask reruns the batches of a worker that died elsewhere. A batch
that keeps killing workers is rerun in halves, one at a time and alone, until
the unit at fault is found; that unit's run carries the error. Runs are
matched to the units the client is still waiting for by ``(index,
repetition)``, so a batch that runs twice is recorded once. Every wait is
bounded: a lost scheduler, a cluster with no workers and a batch that never
finishes each stop the experiment with an error that says so.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
from distributed import Client, Future, as_completed
from evalwire.errors import EvalwireError
from evalwire.executor import Unit
from evalwire.models import Run
from evalwire.unit import Work

from evalwire_dask import wire
from evalwire_dask.cluster import connect
from evalwire_dask.worker import hold, run_batch

NAME = "dask"

#: Units per batch when not configured: enough that a batch's fixed cost
#: (a scheduler round trip, a result transfer) is small next to its work.
MIN_BATCH = 50


class DaskExecutorError(EvalwireError):
    """The cluster could not run an experiment's units: the message says why."""


@dataclass
class _Batch:
    units: list[Unit]
    # Part of a batch that killed workers: runs alone, so a death is its own.
    suspect: bool = False


class DaskExecutor:
    """Runs units on a Dask cluster; see the module docstring.

    ``client`` is a connected :class:`distributed.Client`; ``cluster`` the
    local cluster started for it, if any (closed with the executor).
    ``batch_size`` units go in one Dask task (default: ``max(50, 4 ×
    task_concurrency)``); at most ``prefetch`` batches per worker thread are
    in flight, or ``max_in_flight`` units if given. ``retries`` is passed to
    ``Client.submit`` for batches that raise on a worker. ``stall_timeout``
    (seconds; ``None``: derived from the experiment's timeout and retries)
    ends an experiment in which no batch has finished for that long;
    ``no_workers_timeout`` one whose cluster has had no worker for that long.
    """

    def __init__(
        self,
        client: Client,
        cluster: Any = None,
        *,
        batch_size: int | None = None,
        max_in_flight: int | None = None,
        prefetch: int = 2,
        retries: int = 2,
        stall_timeout: float | None = None,
        no_workers_timeout: float = 60.0,
        rpc_timeout: float = 30.0,
        poll: float = 0.25,
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.prefetch = max(1, prefetch)
        self.retries = retries
        self.stall_timeout = stall_timeout
        self.no_workers_timeout = no_workers_timeout
        self.rpc_timeout = rpc_timeout
        self.poll = poll
        self._threads_cache: tuple[float, int] = (-math.inf, 0)
        self._lock = threading.Lock()
        self._closed = False

    # -- making one ------------------------------------------------------------

    @classmethod
    def start(
        cls,
        address: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        connect_timeout: float = 10.0,
        pickle_by_value: Sequence[str] = (),
        **options: Any,
    ) -> DaskExecutor:
        """Connect to the scheduler at ``address``, or start a local cluster on 127.0.0.1.

        A scheduler that cannot be reached within ``connect_timeout`` seconds
        is a :class:`~evalwire.errors.UsageError` naming the address.
        ``pickle_by_value`` names modules the workers cannot import (a package
        installed only on this machine): their functions are sent by value.
        """
        client, cluster = connect(
            address, n_workers, threads_per_worker, connect_timeout, pickle_by_value
        )
        return cls(client, cluster, **options)

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address) if self.client.scheduler else "?"

    # -- the Executor protocol -----------------------------------------------------

    def execute(self, work: Work, units: Iterable[Unit]) -> Iterator[Run]:
        if self._closed or self.client.status != "running":
            raise DaskExecutorError(
                f"the Dask client for {self.address} is {self.client.status}; "
                f"experiment '{work.name}' did not start"
            )
        return _Execution(self, work, units).run()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.client.close(timeout=self.rpc_timeout)
        except Exception:  # noqa: BLE001, S110 - a scheduler already gone: nothing to close
            pass
        if self.cluster is not None:
            try:
                self.cluster.close(timeout=self.rpc_timeout)
            except Exception:  # noqa: BLE001, S110 - workers that will not stop die with us
                pass

    # -- the cluster, as the client sees it ------------------------------------------

    def threads(self) -> int:
        """Worker threads in the cluster now (asked at most every 2 s); -1 if unknown."""
        with self._lock:
            checked, threads = self._threads_cache
            if time.monotonic() - checked < 2.0:
                return threads
        scheduler = self.client.scheduler
        try:
            if scheduler is None:
                raise ConnectionError("not connected")
            # What Client.nthreads() asks, with a timeout it does not offer.
            nthreads = self.client.sync(scheduler.ncores, callback_timeout=self.rpc_timeout)
            threads = sum(int(n) for n in nthreads.values())
        except Exception:  # noqa: BLE001 - the caller decides what unknown means
            threads = -1
        with self._lock:
            self._threads_cache = (time.monotonic(), threads)
        return threads

    def batch_size_for(self, work: Work) -> int:
        return self.batch_size or max(MIN_BATCH, 4 * work.concurrency)

    def stall_timeout_for(self, work: Work, batch_size: int) -> float | None:
        """How long no batch may finish before the experiment is stopped.

        By default the worst case of one batch: each wave of ``concurrency``
        units may use every attempt of the task (timeout, back-off) and one
        evaluator timeout; at least ten minutes. No limit if tasks have none.
        """
        if self.stall_timeout is not None:
            return self.stall_timeout if self.stall_timeout > 0 else None
        policy = work.policy
        if policy.timeout is None:
            return None
        waves = math.ceil(batch_size / max(1, work.concurrency))
        per_unit = policy.timeout * (policy.retries + 2) + 30.0 * policy.retries
        return max(600.0, waves * per_unit + 60.0)


class _Execution:
    """One experiment's units on the cluster: submit, wait, yield, refill."""

    # Set when the run starts: the pickled work, as a task, and the completions.
    payload: Future[bytes]
    completed: as_completed

    def __init__(self, executor: DaskExecutor, work: Work, units: Iterable[Unit]) -> None:
        self.executor = executor
        self.client = executor.client
        self.work = work
        self.units = iter(units)
        self.batch_size = executor.batch_size_for(work)
        self.stall_timeout = executor.stall_timeout_for(work, self.batch_size)
        self.pending: dict[Future[bytes], _Batch] = {}
        # Units sent and not yet answered, by (index, repetition): the dedupe.
        self.outstanding: dict[tuple[int, int], Unit] = {}
        self.exhausted = False
        self.source_error: BaseException | None = None  # the unit iterator raised
        self.fatal: DaskExecutorError | None = None  # the cluster cannot go on
        # Batches that killed workers, to be run one at a time, halved until
        # the unit at fault is alone.
        self.suspects: deque[_Batch] = deque()
        self.tag = f"{_slug(work.name)}-{uuid.uuid4().hex[:8]}"
        self.sequence = itertools.count()
        self.last_progress = time.monotonic()
        self.next_health_check = self.last_progress
        self.no_workers_since: float | None = None
        self.digest = ""

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> Iterator[Run]:
        blob = self._pickle_work()
        self.digest = hashlib.sha256(blob).hexdigest()
        self.payload = self.client.submit(hold, blob, key=f"evalwire-work-{self.tag}", pure=False)
        self.completed = as_completed(loop=self.client.loop, with_results=True, raise_errors=False)
        try:
            self._refill()
            while self.pending:
                for future, result in self._next_done():
                    batch = self.pending.pop(future, None)
                    if batch is None:  # pragma: no cover - a future already handled
                        continue
                    if future.status == "finished":
                        yield from self._runs(batch, result)
                    else:
                        yield from self._failed(batch, future, result)
                self._refill()
            if self.fatal is not None:
                raise self.fatal
            if self.source_error is not None:
                raise self.source_error
        finally:
            # Normal end, an error, or a consumer that stopped early: let go of
            # everything on the cluster (running batches finish unobserved).
            self.completed.clear()
            for future in self.pending:
                future.release()
            self.pending.clear()
            self.payload.release()

    def _pickle_work(self) -> bytes:
        try:
            return cloudpickle.dumps(self.work)  # type: ignore[no-any-return]
        except Exception as exc:
            raise DaskExecutorError(
                f"experiment '{self.work.name}' cannot be sent to Dask workers: its task or "
                f"an evaluator cannot be pickled ({type(exc).__name__}: {exc}); create clients "
                "and connections inside the task (or lazily, in a module global)"
            ) from exc

    # -- submitting ---------------------------------------------------------------------

    def _target(self) -> int:
        if self.executor.max_in_flight:
            return max(1, self.executor.max_in_flight)
        threads = self.executor.threads()
        return max(1, self.executor.prefetch * threads) * self.batch_size

    def _refill(self) -> None:
        if self.fatal is not None:
            return
        if self.suspects:
            # Nothing else of this experiment runs beside a suspect, so when
            # a worker dies under it, the suspect is the cause.
            if not self.pending:
                self._submit(self.suspects.popleft())
            return
        if self.exhausted or self.source_error is not None:
            return
        target = self._target()
        while True:
            # Whole batches only (unless the window is smaller than one): a
            # batch's fixed cost is paid per task, however few units it holds.
            room = target - len(self.outstanding)
            if self.pending and room < min(self.batch_size, target):
                return
            size = max(1, min(self.batch_size, room))
            chunk: list[Unit] = []
            try:
                for unit in itertools.islice(self.units, size):
                    chunk.append(unit)
            except Exception as exc:  # a malformed row: run what was pulled, then stop
                self.source_error = exc
            if len(chunk) < size and self.source_error is None:
                self.exhausted = True
            if chunk:
                self._submit(_Batch(chunk))
            if self.exhausted or self.source_error is not None:
                return

    def _submit(self, batch: _Batch) -> None:
        for unit in batch.units:
            self.outstanding[(unit.index, unit.repetition)] = unit
        future = self.client.submit(
            run_batch,
            self.payload,
            self.digest,
            wire.dump_units(batch.units),
            key=f"evalwire-batch-{self.tag}-{next(self.sequence)}",
            retries=self.executor.retries,
            pure=False,
        )
        self.pending[future] = batch
        self.completed.add(future)

    # -- waiting ----------------------------------------------------------------------

    def _next_done(self) -> list[tuple[Future[bytes], Any]]:
        """The batches finished since the last call; waits in short, bounded steps."""
        completed = self.completed
        while True:
            done = completed.next_batch(block=False)
            if done:
                self.last_progress = time.monotonic()
                self.no_workers_since = None
                return done  # type: ignore[no-any-return]
            self._check_health()
            # as_completed notifies this condition as each future completes;
            # checking under it cannot miss a completion.
            condition = getattr(completed, "thread_condition", None)
            if condition is None:  # pragma: no cover - other versions of distributed
                time.sleep(min(0.01, self.executor.poll))
                continue
            with condition:
                if not completed.has_ready():
                    condition.wait(self.executor.poll)

    def _check_health(self) -> None:
        now = time.monotonic()
        status = self.client.status
        if status in ("closing", "closed"):
            raise DaskExecutorError(
                f"the Dask client for {self.executor.address} is {status}; "
                f"experiment '{self.work.name}' stopped with {len(self.outstanding)} units unrun"
            )
        if self.stall_timeout is not None and now - self.last_progress > self.stall_timeout:
            raise DaskExecutorError(
                f"experiment '{self.work.name}': no batch finished on the Dask cluster at "
                f"{self.executor.address} in {self.stall_timeout:g} s (set [dask] stall_timeout "
                "to wait longer)"
            )
        if now < self.next_health_check:
            return
        self.next_health_check = now + min(5.0, self.executor.no_workers_timeout / 4)
        if self.executor.threads() != 0:
            self.no_workers_since = None
            return
        if self.no_workers_since is None:
            self.no_workers_since = now
        elif now - self.no_workers_since > self.executor.no_workers_timeout:
            raise DaskExecutorError(
                f"experiment '{self.work.name}': the Dask cluster at {self.executor.address} "
                f"has had no workers for {self.executor.no_workers_timeout:g} s; start some "
                f"with `dask worker {self.executor.address}`"
            )

    # -- results ----------------------------------------------------------------------

    def _runs(self, batch: _Batch, result: bytes) -> Iterator[Run]:
        yield from wire.load_runs(result, self.outstanding)
        missing = [u for u in batch.units if (u.index, u.repetition) in self.outstanding]
        if missing and self.fatal is None:  # pragma: no cover - workers answer for every unit
            self.fatal = DaskExecutorError(
                f"experiment '{self.work.name}': a batch came back from the Dask cluster "
                f"without {len(missing)} of its units"
            )

    def _failed(self, batch: _Batch, future: Future[bytes], result: Any) -> Iterator[Run]:
        from distributed import KilledWorker

        if isinstance(result, tuple) and len(result) == 3:  # (type, exception, traceback)
            result = result[1]
        if not isinstance(result, KilledWorker):
            for unit in batch.units:
                self.outstanding.pop((unit.index, unit.repetition), None)
            if self.fatal is None:
                self.fatal = self._explain(future, result)
            return
        # Dask reran this batch each time a worker died under it, and gave
        # up. A batch beside it in a dying worker counts as well, so only a
        # suspect (which runs alone) is known to be at fault: halve suspects
        # until the unit at fault is alone, so the others still run.
        if not batch.suspect or len(batch.units) > 1:
            half = len(batch.units) // 2  # 0 for one unit: it reruns alone, as a suspect
            parts = [batch.units[:half], batch.units[half:]]
            self.suspects.extendleft(_Batch(p, suspect=True) for p in reversed(parts) if p)
            return
        [unit] = batch.units
        if self.outstanding.pop((unit.index, unit.repetition), None) is not None:
            now = time.time()
            yield Run(
                example=unit.example,
                repetition=unit.repetition,
                output=None,
                error="KilledWorker: this unit crashed every Dask worker that ran it "
                "(out of memory, a segfault, or the process exiting)",
                started_at=now,
                ended_at=now,
                index=unit.index,
            )

    def _explain(self, future: Future[bytes], result: Any) -> DaskExecutorError:
        name = self.work.name
        if future.status == "cancelled":
            return DaskExecutorError(
                f"experiment '{name}': lost the connection to the Dask scheduler at "
                f"{self.executor.address}; the units in flight did not finish "
                f"({str(result).splitlines()[0]})"
            )
        if isinstance(result, BaseException):
            what = f"{type(result).__name__}: {result}"
        else:  # pragma: no cover - as_completed hands over the exception itself
            what = repr(result)
        return DaskExecutorError(f"experiment '{name}': a batch failed on the Dask cluster: {what}")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "experiment"
