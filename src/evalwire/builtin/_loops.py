"""The ``threads`` executor's machinery: event-loop threads on this machine.

Each experiment running at once gets a worker thread with a persistent event
loop (never ``asyncio.run`` per call, which breaks async clients that clean
up on the loop). On it, ``task_concurrency`` worker coroutines pull units
from the lazy unit iterator, so at most that many are in flight and a large
dataset is never materialized. Sync tasks run in the loop's own thread pool,
a :class:`_BlockingPool` behind ``run_in_executor(None, ...)``. Finished runs
are handed back to the experiment's thread in batches.
"""

from __future__ import annotations

import _thread
import asyncio
import functools
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypeVar

from evalwire.unit import AdaptiveLimiter, run_unit

if sys.platform == "win32":  # pragma: no cover - asyncio's default loop there
    from asyncio import ProactorEventLoop as _BaseLoop
else:
    from asyncio import SelectorEventLoop as _BaseLoop

if TYPE_CHECKING:
    from typing_extensions import TypeVarTuple, Unpack

    from evalwire.executor import Unit
    from evalwire.models import Run
    from evalwire.unit import Work

    _Ts = TypeVarTuple("_Ts")

_DONE = object()
#: Finished runs go to the consumer at most once per this many seconds, unless
#: this many are waiting (see :class:`_Batcher`).
HANDOFF_INTERVAL = 0.005
HANDOFF_LIMIT = 256
_T = TypeVar("_T")
_Call = tuple[Callable[[], Any], asyncio.Future[Any]]
_Outcome = tuple[bool, Any]  # (returned, its value) or (raised, the exception)


class _Loop(_BaseLoop):
    """asyncio's default loop, with a :class:`_BlockingPool` as its default executor.

    Sync tasks reach the pool through ``run_in_executor(None, ...)``, as do
    offloaded evaluators and ``asyncio.to_thread``: the task adapter needs to
    know nothing about this executor, and works the same on any other loop.
    """

    def __init__(self, pool_size: int, name: str) -> None:
        super().__init__()
        self.blocking = _BlockingPool(self, pool_size, name)

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[Unpack[_Ts]], _T], *args: Unpack[_Ts]
    ) -> asyncio.Future[_T]:
        if executor is not None:
            return super().run_in_executor(executor, func, *args)
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        return self.blocking.submit(functools.partial(func, *args) if args else func)


class _BlockingPool:
    """Threads for one loop's blocking calls, started as needed up to ``size``.

    What ``ThreadPoolExecutor`` behind ``run_in_executor`` did differently, and
    why this one exists (benchmarks/README.md, "sync schedule"):

    * it started each thread with ``Thread.start()``, which waits until the new
      thread runs; 100 in a row held the first wave of sync tasks back by
      ~20 ms on a quiet machine and 70-180 ms on a busy one. Here a throw-away
      thread does the waiting, so the loop goes on and the starts overlap;
    * it handed every result back through a concurrent Future chained to an
      asyncio one, with a loop wake-up each. Here a thread appends the result
      to a list and wakes the loop only if no wake-up is pending yet: results
      that arrive together are settled in one pass.

    A call whose unit gave up (its timeout) before a thread took it is never
    made; one already running runs on and its result is dropped. The threads
    are daemons, so none of them keeps the process alive at exit.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int, name: str) -> None:
        self.loop = loop
        self.size = size
        self.name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # started or starting
        self._spare = 0  # threads without a call, less calls without a thread
        self._results: list[tuple[asyncio.Future[Any], _Outcome]] = []
        self._wake_pending = False

    def submit(self, fn: Callable[[], _T]) -> asyncio.Future[_T]:
        """Call ``fn()`` in a thread (from the loop's thread); its future settles on the loop."""
        future: asyncio.Future[_T] = self.loop.create_future()
        self._calls.put((fn, future))
        with self._lock:
            self._spare -= 1
            index = self._threads
            start = self._spare < 0 and index < self.size
            if start:
                self._spare += 1
                self._threads += 1
        if start:
            thread = threading.Thread(target=self._serve, name=f"{self.name}_{index}", daemon=True)
            try:
                _thread.start_new_thread(self._start, (thread,))
            except RuntimeError as exc:  # "can't start new thread"
                self._not_started(exc)
        return future

    def close(self) -> None:
        """Let every thread end after its current call; wait for none of them."""
        with self._lock:
            threads = self._threads
        for _ in range(threads):
            self._calls.put(None)

    def _start(self, thread: threading.Thread) -> None:
        try:
            thread.start()
        except BaseException as exc:  # noqa: BLE001 - nobody else would hear of it
            self._not_started(exc)

    def _not_started(self, exc: BaseException) -> None:
        with self._lock:
            self._threads -= 1
            self._spare -= 1
            stranded = self._threads == 0
        if not stranded:
            return  # the calls waiting get the threads that did start
        failed: list[tuple[asyncio.Future[Any], _Outcome]] = []
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                error = RuntimeError(f"no thread could be started for a sync call: {exc}")
                failed.append((call[1], (False, error)))
        for future, outcome in failed:
            self._hand_back(future, outcome)

    def _serve(self) -> None:
        get = self._calls.get
        while True:
            call = get()
            if call is None or not self._call(*call):
                return

    def _call(self, fn: Callable[[], Any], future: asyncio.Future[Any]) -> bool:
        """Make one call and hand its outcome back; ``False`` once the loop is closed."""
        if future.cancelled():  # its unit gave up before a thread was free
            with self._lock:
                self._spare += 1
            return True
        try:
            outcome: _Outcome = (True, fn())
        except BaseException as exc:  # noqa: BLE001 - the awaiting unit re-raises it
            outcome = (False, exc)
        return self._hand_back(future, outcome)

    def _hand_back(self, future: asyncio.Future[Any], outcome: _Outcome) -> bool:
        with self._lock:
            self._spare += 1
            self._results.append((future, outcome))
            if self._wake_pending:
                return True
            self._wake_pending = True
        try:
            self.loop.call_soon_threadsafe(self._settle)
        except RuntimeError:  # closed: this call ran on after its unit's timeout
            return False
        return True

    def _settle(self) -> None:
        with self._lock:
            results, self._results = self._results, []
            self._wake_pending = False
        for future, (returned, value) in results:
            if future.done():  # cancelled: the unit timed out
                continue
            if returned:
                future.set_result(value)
            elif isinstance(value, StopIteration):  # a Future refuses it, as a coroutine would
                error = RuntimeError(f"a sync call raised StopIteration: {value}")
                error.__cause__ = value
                future.set_exception(error)
            else:
                future.set_exception(value)


class _LoopThread:
    """A daemon thread running one event loop for as long as the executor lives."""

    def __init__(self, index: int, threads: int) -> None:
        self.loop = _Loop(threads, f"evalwire-task-{index}")
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
        self.loop.blocking.close()
        if not self.loop.is_running():
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
        batcher = _Batcher(batches.put, HANDOFF_INTERVAL, HANDOFF_LIMIT)
        future = asyncio.run_coroutine_threadsafe(drive(work, units, batcher, window), loop)
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
    """Collects finished runs and hands them to the consumer thread together.

    At most one hand-off (a put that wakes the consumer, whose window give
    then wakes the loop) per ``interval``, unless ``limit`` runs are waiting.
    Sync tasks come back one thread at a time: a hand-off per loop pass made
    ~1,000 of them for 2,000 sync runs (2 runs each) and cost ~20 % of the sync
    schedule's CPU. Where runs come fast, ``limit`` of them go at once, so the
    window never waits for the timer (a no-op async task runs as fast either
    way, within the noise).
    """

    __slots__ = ("put", "interval", "limit", "pending", "last", "loop")

    def __init__(
        self, put: Callable[[list[Run]], None], interval: float = 0.005, limit: int = 256
    ) -> None:
        self.put = put
        self.interval = interval
        self.limit = limit
        self.pending: list[Run] | None = None
        self.last = float("-inf")
        self.loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, run: Run) -> None:
        pending = self.pending
        if pending is None:
            self.pending = [run]
            loop = self.loop = asyncio.get_running_loop()
            delay = self.last + self.interval - loop.time()
            if delay > 0:
                loop.call_later(delay, self.flush)
            else:
                loop.call_soon(self.flush)
        else:
            pending.append(run)
            if len(pending) >= self.limit:
                self.flush()

    def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, None
            if self.loop is not None:
                self.last = self.loop.time()
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
