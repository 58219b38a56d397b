"""Prototypes of proposed core changes, applied by monkeypatching this process only.

``python -m benchmarks --patch NAME[,NAME]`` (or ``--patch all``) measures the
scenarios with them, to put a number on each proposal before anyone edits the
core. Nothing here is imported by evalwire; every patch is undone on exit.
A few patches (``PREVIOUS``) go the other way: they put back code the core has
since replaced, so ``python -m benchmarks.schedule --compare`` can measure the
change against what was there before, run by run.
See ``README.md`` ("Proposed changes") for what each stands for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the start-up patches must not pay for asyncio
    import asyncio

Patch = Callable[[], Callable[[], None]]  # applies itself, returns its undo
PATCHES: dict[str, Patch] = {}
#: Patches that put back code the core has since replaced, to measure the change
#: side by side (``python -m benchmarks.schedule --compare``); ``all`` leaves them out.
PREVIOUS: set[str] = set()


def patch(name: str, *, previous: bool = False) -> Callable[[Patch], Patch]:
    def register(fn: Patch) -> Patch:
        PATCHES[name] = fn
        if previous:
            PREVIOUS.add(name)
        return fn

    return register


def _swap(obj: Any, attr: str, value: Any) -> Callable[[], None]:
    old = getattr(obj, attr)
    setattr(obj, attr, value)
    return lambda: setattr(obj, attr, old)


@contextmanager
def applied(names: list[str]) -> Iterator[list[str]]:
    """Apply the named patches (``["all"]`` for every one) for the block's duration."""
    if names == ["all"]:
        names = [n for n in PATCHES if n not in PREVIOUS]
    unknown = [n for n in names if n not in PATCHES]
    if unknown:
        raise SystemExit(f"unknown patch(es): {', '.join(unknown)}; known: {', '.join(PATCHES)}")
    import sys

    # Tell the harness (when it is the one applying them), without importing it
    # into a start-up measurement's child process.
    common = sys.modules.get("benchmarks.common")
    active: list[str] = common.ACTIVE_PATCHES if common is not None else []
    before = list(active)
    undo = [PATCHES[n]() for n in names]
    active[:] = names
    try:
        yield names
    finally:
        active[:] = before
        for u in reversed(undo):
            u()


# -- 1. builtin/callables.py: move an evaluator to the pool only when it stays slow ----------


@patch("offload-streak")
def _offload_streak() -> Callable[[], None]:
    """``_SyncEvaluator`` offloads after 3 slow calls in a row, not after one.

    One call over 5 ms happens to a 1 µs evaluator whenever a GC pass (or the
    first call's imports) lands inside it; from then on every evaluation pays a
    thread-pool round trip.
    """
    import asyncio
    import functools
    import inspect
    import time

    from evalwire.builtin import callables
    from evalwire.normalize import to_evaluation

    class StreakEvaluator:
        __slots__ = ("fn", "name", "arguments", "params", "offload", "slow")

        def __init__(self, fn: Any, name: str, arguments: Any, params: dict[str, Any]) -> None:
            self.fn, self.name, self.arguments, self.params = fn, name, arguments, params
            self.offload = False
            self.slow = 0

        async def __call__(self, output: Any, example: Any) -> Any:
            args, kwargs = self.arguments(example, output, self.params)
            if self.offload:
                loop = asyncio.get_running_loop()
                call = functools.partial(self.fn, *args, **kwargs)
                result = await loop.run_in_executor(None, call)
            else:
                started = time.perf_counter()
                result = self.fn(*args, **kwargs)
                if time.perf_counter() - started > callables._SLOW_EVALUATOR:
                    self.slow += 1
                    self.offload = self.slow >= 3
                else:
                    self.slow = 0
            if inspect.isawaitable(result):
                result = await result
            return to_evaluation(result, self.name)

    return _swap(callables, "_SyncEvaluator", StreakEvaluator)


# -- 2. unit.py: no timer around a call that cannot suspend ---------------------------------


@patch("inline-evaluator")
def _inline_evaluator() -> Callable[[], None]:
    """``_evaluate`` awaits an inline sync evaluator directly, without ``call_with_policy``.

    A sync evaluator running on the loop cannot be interrupted by a timeout, so
    arming one (``asyncio.timeout``: a Timeout, a TimerHandle pushed on the
    loop's heap, then cancelled) buys nothing. On an exception the policy path
    runs as before (rate-limit waits), so behaviour is unchanged.
    """
    import asyncio

    from evalwire import unit
    from evalwire.models import Evaluation

    original = unit._evaluate

    async def _evaluate(name: str, evaluator: Any, output: Any, example: Any, work: Any) -> Any:
        if getattr(evaluator, "offload", None) is False:  # inline: cannot suspend on its own
            try:
                return await evaluator(output, example)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not work.policy.is_rate_limit(exc):
                    return Evaluation(name, error=unit.describe(exc, work.policy.timeout))
        return await original(name, evaluator, output, example, work)

    return _swap(unit, "_evaluate", _evaluate)


# -- 3. unit.py: a deadline table instead of one asyncio.timeout per call ------------------


class _Deadlines:
    """One per loop: calls register a deadline in a dict; one timer scans it.

    Registering is a dict store (no TimerHandle, no heap push, no cancel); the
    scan timer is re-armed only when it is not already pending, and at most
    every ``resolution`` seconds, so a timeout fires up to ``resolution`` late.
    """

    resolution = 0.05

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.active: dict[object, tuple[float, asyncio.Task[Any]]] = {}
        self.armed = False

    def add(self, key: object, deadline: float, task: asyncio.Task[Any]) -> None:
        self.active[key] = (deadline, task)
        if not self.armed:
            self.armed = True
            self.loop.call_at(max(deadline, self.loop.time() + self.resolution), self.scan)

    def scan(self) -> None:
        self.armed = False
        now = self.loop.time()
        earliest = None
        for key, (deadline, task) in list(self.active.items()):
            if deadline <= now:
                del self.active[key]
                key.expired = True  # type: ignore[attr-defined]
                task.cancel()
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self.armed = True
            self.loop.call_at(max(earliest, now + self.resolution), self.scan)


class _Call:
    __slots__ = ("expired",)

    def __init__(self) -> None:
        self.expired = False


@patch("deadline-table")
def _deadline_table() -> Callable[[], None]:
    """``_with_timeout`` registers the call in a per-loop deadline table.

    Same contract (``TimeoutError`` after ``timeout`` seconds, the call really
    cancelled), a fraction of the cost per call, up to 50 ms of lateness.
    """
    import asyncio

    from evalwire import unit

    async def _with_timeout(aw: Any, timeout: float | None) -> Any:
        if timeout is None:
            return await aw
        loop = asyncio.get_running_loop()
        table = getattr(loop, "_evalwire_deadlines", None)
        if table is None:
            table = _Deadlines(loop)
            loop._evalwire_deadlines = table  # type: ignore[attr-defined]
        task = asyncio.current_task()
        assert task is not None
        call = _Call()
        table.add(call, loop.time() + timeout, task)
        try:
            return await aw
        except asyncio.CancelledError:
            if call.expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            table.active.pop(call, None)

    return _swap(unit, "_with_timeout", _with_timeout)


# -- 4. plugins.py: read a distribution's metadata only when it is shown ----------------------


class _LazyDist:
    """``(distribution name, version)`` of an entry point, read on first use."""

    __slots__ = ("dist", "value")

    def __init__(self, dist: Any) -> None:
        self.dist = dist
        self.value: tuple[str | None, str | None] | None = None

    def _get(self) -> tuple[str | None, str | None]:
        if self.value is None:
            d = self.dist
            self.value = (d.metadata["Name"], d.version) if d is not None else (None, None)
        return self.value

    def __iter__(self) -> Iterator[str | None]:
        return iter(self._get())

    def __getitem__(self, index: int) -> str | None:
        return self._get()[index]


@patch("lazy-dist-metadata")
def _lazy_dist_metadata() -> Callable[[], None]:
    """``_load_entry_points`` parses no METADATA file unless it must.

    Today every entry point's distribution METADATA is parsed twice (name and
    version; email.parser, uncached) when plugins load, for every command. Only
    ``evalwire plugins``, error messages and the autoload check need them; the
    autoload check can use the dist-info folder's normalized name.
    """
    from evalwire import plugins as module
    from evalwire.errors import PluginError

    def _load_entry_points(self: Any, autoload: bool) -> None:
        for ep in module._entry_points():
            if self.pm.is_blocked(ep.name) or self.pm.has_plugin(ep.name):
                continue
            dist = getattr(ep, "dist", None)
            lazy = _LazyDist(dist)
            if not autoload and _dist_name(dist) != module.DISTRIBUTION:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin '{ep.name}' (from distribution {lazy[0] or 'unknown'}) "
                    f"failed to import: {type(exc).__name__}: {exc}. "
                    f"Fix or uninstall it, or block it with -p no:{ep.name}"
                ) from exc
            self.register(plugin, ep.name)
            if self.pm.has_plugin(ep.name):
                self._dists[ep.name] = lazy

    return _swap(module.Plugins, "_load_entry_points", _load_entry_points)


def _dist_name(dist: Any) -> str | None:
    if dist is None:
        return None
    normalized = getattr(dist, "_normalized_name", None)  # from the dist-info folder's name
    return str(normalized if normalized is not None else dist.metadata["Name"])


@patch("stdlib-metadata")
def _stdlib_metadata() -> Callable[[], None]:
    """``_entry_points`` uses the standard library's ``importlib.metadata`` from 3.10.

    ``entry_points(group=...)`` and ``EntryPoint.dist`` are there since 3.10;
    the ``importlib_metadata`` backport costs its own import on 3.10 and 3.11.
    """
    from evalwire import plugins as module

    def _entry_points() -> Any:
        from importlib.metadata import entry_points

        return entry_points(group=module.GROUP)

    return _swap(module, "_entry_points", _entry_points)


@patch("cached-entry-points")
def _cached_entry_points() -> Callable[[], None]:
    """``_entry_points`` scans site-packages once per process, not once per session.

    ``ExperimentRunner.run`` (and every ``run_experiment`` call) loads plugins
    afresh; listing the ``evalwire`` entry points reads every installed
    distribution's ``entry_points.txt`` (about 200 here). The list can be
    cached; the plugin objects are still registered per session.
    """
    import functools

    from evalwire import plugins as module

    original = module._entry_points
    cached = functools.lru_cache(maxsize=1)(lambda: tuple(original()))
    return _swap(module, "_entry_points", cached)


@patch("gc-threshold")
def _gc_threshold() -> Callable[[], None]:
    """``Session.run`` raises the GC's first threshold while units run, then restores it.

    Every unit allocates a handful of container objects (coroutines, futures,
    Run, Evaluation); with the default threshold (700) the collector runs every
    few units. 10,000 keeps collections rare without letting garbage pile up.
    """
    import gc

    from evalwire import session

    original = session.Session.run

    def run(self: Any) -> Any:
        old = gc.get_threshold()
        gc.set_threshold(10_000, old[1], old[2])
        try:
            return original(self)
        finally:
            gc.set_threshold(*old)

    return _swap(session.Session, "run", run)


@patch("store-queue-cap")
def _store_queue_cap() -> Callable[[], None]:
    """``store/records.py``: ``MAX_QUEUE`` 10,000 instead of 50,000 runs.

    When the writer falls behind (it steps aside for the GIL every 128 runs),
    the queue fills to the cap, and 50,000 queued runs (each holding its
    Example) are ~50 MB: peak RSS then depends on how far behind the writer got,
    not on anything the user controls. Batches are 2,000 runs, so 10,000 still
    leaves the writer five batches of work.
    """
    from evalwire.store import records

    return _swap(records, "MAX_QUEUE", 10_000)


# -- the previous sync-task path (before the sync schedule fixes), for side-by-side runs --------


@patch("thread-pool-executor", previous=True)
def _thread_pool_executor() -> Callable[[], None]:
    """The threads executor's loops run blocking calls in a ``ThreadPoolExecutor`` again.

    As before: ``run_in_executor`` chains a concurrent Future to an asyncio one
    per call (a loop wake-up each), and the pool starts every thread with
    ``Thread.start()``, which waits until the thread runs.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from evalwire.builtin import _loops

    def run_in_executor(self: Any, executor: Any, func: Any, *args: Any) -> Any:
        if executor is None:
            executor = self.__dict__.get("_bench_pool")
            if executor is None:
                blocking = self.blocking
                executor = ThreadPoolExecutor(blocking.size, thread_name_prefix=blocking.name)
                self._bench_pool = executor
        return asyncio.BaseEventLoop.run_in_executor(self, executor, func, *args)

    stop = _loops._LoopThread.stop

    def stop_and_shut_down(self: Any) -> None:
        stop(self)
        pool = self.loop.__dict__.get("_bench_pool")
        if pool is not None:  # as the executor did: a timed-out task may still run
            pool.shutdown(wait=False, cancel_futures=True)

    undo_run = _swap(_loops._Loop, "run_in_executor", run_in_executor)
    undo_stop = _swap(_loops._LoopThread, "stop", stop_and_shut_down)

    def undo() -> None:
        undo_stop()
        undo_run()

    return undo


@patch("handoff-per-pass", previous=True)
def _handoff_per_pass() -> Callable[[], None]:
    """Finished runs go to the consumer after every loop pass, not at most every 5 ms."""
    from evalwire.builtin import _loops

    return _swap(_loops, "HANDOFF_INTERVAL", 0.0)
