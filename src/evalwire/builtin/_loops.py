"""The ``threads`` executor's machinery: event-loop threads on this machine.

Each experiment running at once gets a worker thread with a persistent event
loop (never ``asyncio.run`` per call, which breaks async clients that clean
up on the loop). On it, ``task_concurrency`` worker coroutines pull units
from the lazy unit iterator, so at most that many are in flight and a large
dataset is never materialized. Sync tasks run in the loop's thread pool.
Finished runs are handed back to the experiment's thread in batches.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from evalwire.unit import AdaptiveLimiter, run_unit

if TYPE_CHECKING:
    from evalwire.executor import Unit
    from evalwire.models import Run
    from evalwire.unit import Work

_DONE = object()


class _LoopThread:
    """A daemon thread running one event loop for as long as the executor lives."""

    def __init__(self, index: int, threads: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix=f"evalwire-task-{index}")
        self.loop.set_default_executor(self.pool)
        self.thread = threading.Thread(
            target=self._serve, name=f"evalwire-loop-{index}", daemon=True
        )
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def stop(self) -> None:
        try:  # let cancelled units unwind before the loop goes away
            asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(timeout=5)
        except Exception:  # noqa: S110 - a unit that ignores cancellation is abandoned
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        # A sync task past its timeout may still be running: do not wait for it.
        self.pool.shutdown(wait=False, cancel_futures=True)
        if not self.loop.is_running():
            # close() waits for the default executor: hand it an idle one.
            self.loop.set_default_executor(ThreadPoolExecutor(1))
            self.loop.close()


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class ThreadsExecutor:
    """Runs units on event-loop threads; see the module docstring."""

    def __init__(self, threads: int = 16, window: int = 1024) -> None:
        self.threads = threads
        self.window = window
        self._idle: list[_LoopThread] = []
        self._all: list[_LoopThread] = []
        self._lock = threading.Lock()

    def _acquire(self) -> _LoopThread:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            loop_thread = _LoopThread(len(self._all), self.threads)
            self._all.append(loop_thread)
            return loop_thread

    def _release(self, loop_thread: _LoopThread) -> None:
        with self._lock:
            self._idle.append(loop_thread)

    def execute(self, work: Work, units: Iterable[Unit]) -> Iterator[Run]:
        loop_thread = self._acquire()
        loop = loop_thread.loop
        batches: queue.SimpleQueue[Any] = queue.SimpleQueue()
        window = _Window(max(self.window, work.concurrency))
        future = asyncio.run_coroutine_threadsafe(
            drive(work, units, _Batcher(batches.put), window), loop
        )
        future.add_done_callback(lambda _: batches.put(_DONE))
        try:
            while True:
                batch = batches.get()
                if batch is _DONE:
                    break
                yield from batch
                # Only now may the loop start as many new units as were handed over.
                loop.call_soon_threadsafe(window.give, len(batch))
            future.result()  # re-raises what stopped the units (a malformed row)
        finally:
            if not future.done():  # the consumer gave up: stop the units in flight
                future.cancel()
            self._release(loop_thread)

    def close(self) -> None:
        with self._lock:
            loop_threads, self._all, self._idle = self._all, [], []
        for loop_thread in loop_threads:
            loop_thread.stop()


class _Window:
    """Runs started but not yet taken by the consumer: the executor's back-pressure.

    Without it a fast task and a slow reporter would pile finished runs up in
    memory; with it at most ``size`` runs exist at once, however big the dataset.
    """

    def __init__(self, size: int) -> None:
        self.free = size
        self._event: asyncio.Event | None = None

    async def take(self) -> None:
        while self.free <= 0:
            if self._event is None:
                self._event = asyncio.Event()
            self._event.clear()
            await self._event.wait()
        self.free -= 1

    def give(self, count: int) -> None:
        self.free += count
        if self._event is not None:
            self._event.set()


class _Batcher:
    """Collects runs finished in one pass of the loop and hands them over together.

    Under load many units finish per loop iteration; one cross-thread hand-off
    per batch instead of per run keeps the consumer thread from waking
    thousands of times a second.
    """

    __slots__ = ("put", "pending")

    def __init__(self, put: Callable[[list[Run]], None]) -> None:
        self.put = put
        self.pending: list[Run] | None = None

    def __call__(self, run: Run) -> None:
        if self.pending is None:
            self.pending = [run]
            asyncio.get_running_loop().call_soon(self.flush)
        else:
            self.pending.append(run)

    def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, None
            self.put(pending)


async def drive(
    work: Work, units: Iterable[Unit], emit: Callable[[Run], None], window: _Window | None = None
) -> None:
    """Run every unit with at most ``work.concurrency`` in flight; emit each run.

    With a ``window``, a unit starts only when the consumer has room for its run.

    If pulling the next unit raises, no new unit starts; the ones in flight
    finish and are emitted; then the error is raised.
    """
    limiter = AdaptiveLimiter(work.concurrency)
    iterator = iter(units)
    failure: list[BaseException] = []

    async def worker() -> None:
        while not failure:
            if window is not None:
                await window.take()
            try:
                unit = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                failure.append(exc)
                return
            emit(await run_unit(work, unit, limiter))

    try:
        await asyncio.gather(*(worker() for _ in range(work.concurrency)))
    finally:
        flush = getattr(emit, "flush", None)
        if flush is not None:
            flush()
    if failure:
        raise failure[0]
