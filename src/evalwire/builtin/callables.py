"""The ``callables`` adapter: plain sync and async functions as tasks and evaluators.

Parameters are bound by name (see :mod:`evalwire.binding`). A sync task runs
in the event loop's thread pool, because tasks usually block on a model API.
A sync evaluator runs on the loop itself, because evaluators are usually quick
code; one that turns out slow (three calls in a row over 10 ms) is moved to the thread pool
so it cannot stall the other units.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import time
from collections.abc import Callable
from typing import Any

from evalwire.binding import EVALUATOR_PARAMETERS, TASK_PARAMETERS, bind, is_async
from evalwire.config import Config
from evalwire.models import Evaluation, Example, ExperimentSpec
from evalwire.normalize import to_evaluation
from evalwire.plugins import hookimpl

_SLOW_EVALUATOR = max(0.005, 2 * sys.getswitchinterval())
_SLOW_STREAK = 3


@hookimpl(trylast=True)
def evalwire_adapt_task(task: Any, spec: ExperimentSpec, config: Config) -> Any:
    if not callable(task):
        return None
    import asyncio  # here, not at import: `evalwire --help` loads this plugin

    binding = bind(task, TASK_PARAMETERS, "input", f"task of experiment '{spec.name}'")
    params = spec.params
    arguments = binding.arguments

    if is_async(task):

        async def run_async(example: Example) -> Any:
            args, kwargs = arguments(example, None, params)
            return await task(*args, **kwargs)

        return run_async

    async def run_sync(example: Example) -> Any:
        args, kwargs = arguments(example, None, params)
        loop = asyncio.get_running_loop()
        # In the unit's context (as asyncio.to_thread does), so the task's own
        # context variables, a tracer's current span among them, reach the thread.
        call = functools.partial(contextvars.copy_context().run, task, *args, **kwargs)
        result = await loop.run_in_executor(None, call)
        if inspect.isawaitable(result):
            result = await result
        return result

    return run_sync


@hookimpl(trylast=True)
def evalwire_adapt_evaluator(
    evaluator: Any, name: str, spec: ExperimentSpec, config: Config
) -> Any:
    if not callable(evaluator):
        return None
    binding = bind(
        evaluator,
        EVALUATOR_PARAMETERS,
        "output",
        f"evaluator '{name}' of experiment '{spec.name}'",
    )
    params = spec.params
    arguments = binding.arguments

    if is_async(evaluator):

        async def evaluate_async(output: Any, example: Example) -> Evaluation:
            args, kwargs = arguments(example, output, params)
            return to_evaluation(await evaluator(*args, **kwargs), name)

        return evaluate_async

    return _SyncEvaluator(evaluator, name, arguments, params)


class _SyncEvaluator:
    """Calls a sync evaluator inline until it proves slow, then in the thread pool.

    "Slow" is three calls in a row over the threshold: a single slow call may
    only have waited for the GIL or been preempted on a busy machine.
    """

    __slots__ = ("fn", "name", "arguments", "params", "offload", "slow_streak")

    def __init__(
        self, fn: Callable[..., Any], name: str, arguments: Any, params: dict[str, Any]
    ) -> None:
        self.fn = fn
        self.name = name
        self.arguments = arguments
        self.params = params
        self.offload = False
        self.slow_streak = 0

    @property
    def inline(self) -> bool:
        """Whether the next call runs on the loop itself (the unit then skips its timeout)."""
        return not self.offload

    async def __call__(self, output: Any, example: Example) -> Evaluation:
        args, kwargs = self.arguments(example, output, self.params)
        if self.offload:
            import asyncio

            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, functools.partial(self.fn, *args, **kwargs))
        else:
            started = time.perf_counter()
            result = self.fn(*args, **kwargs)
            if time.perf_counter() - started > _SLOW_EVALUATOR:
                self.slow_streak += 1
                self.offload = self.slow_streak >= _SLOW_STREAK
            else:
                self.slow_streak = 0
        if inspect.isawaitable(result):
            result = await result
        return to_evaluation(result, self.name)
