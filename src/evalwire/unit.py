"""The unit of work: call the task under a policy, score its output, make a Run.

Owned by the core so every executor means the same thing by "run an example":
a timeout that really stops waiting, retries with exponential back-off and
jitter, and rate-limit errors that slow the experiment down (through an
:class:`AdaptiveLimiter`) instead of failing it.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalwire.executor import Unit
from evalwire.models import Evaluation, Example, Run

if TYPE_CHECKING:
    from evalwire.tracing import Tracer

TaskFn = Callable[[Example], Awaitable[Any]]
EvaluatorFn = Callable[[Any, Example], Awaitable[Evaluation]]

_MAX_DELAY = 30.0


@dataclass(frozen=True)
class Policy:
    """How hard to try: timeout per call, retries, back-off, what a rate limit looks like."""

    timeout: float | None = 60.0
    retries: int = 3
    backoff: float = 1.0
    rate_limit_errors: tuple[Any, ...] = ()
    max_rate_limit_retries: int = 20

    def is_rate_limit(self, exc: BaseException) -> bool:
        """Whether ``exc`` means "slow down" rather than "this failed".

        Matches the configured exception types or class names (a name matches
        any class in the exception's MRO, bare or dotted), and by default any
        exception carrying HTTP status 429 or whose class name says RateLimit.
        """
        for kind in self.rate_limit_errors:
            if isinstance(kind, type):
                if isinstance(exc, kind):
                    return True
            else:
                for cls in type(exc).__mro__:
                    if kind in (cls.__name__, f"{cls.__module__}.{cls.__qualname__}"):
                        return True
        status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
        if status == 429:
            return True
        return any("RateLimit" in cls.__name__ for cls in type(exc).__mro__)

    def delay(self, attempt: int) -> float:
        """Exponential back-off with jitter before retry number ``attempt`` (from 1)."""
        base = self.backoff * (2 ** (attempt - 1))
        return min(_MAX_DELAY, base * random.uniform(0.5, 1.5))


@dataclass(frozen=True)
class Work:
    """Everything a unit needs: the adapted task and evaluators and the policy.

    Built by the core once per experiment and handed to the executor; it is
    plain data plus callables, so an executor may ship it to other processes.
    ``tracer`` (see :mod:`evalwire.tracing`) puts each task call in a span.
    """

    name: str
    task: TaskFn
    evaluators: tuple[tuple[str, EvaluatorFn], ...]
    policy: Policy = field(default_factory=Policy)
    concurrency: int = 10
    tracer: Tracer | None = None


class AdaptiveLimiter:
    """Caps calls in flight; halves the cap on a rate limit, regrows it on success.

    Bound to one event loop (the one running the experiment's units). The
    fast path (below the cap, nobody waiting) does not suspend.
    """

    def __init__(self, maximum: int, cooldown: float = 1.0) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.active = 0
        self.cooldown = cooldown
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._streak = 0
        self._last_cut = -1e9

    async def __aenter__(self) -> None:
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.active -= 1  # we were handed a slot we will not use
                self._wake()
            else:
                self._waiters.remove(future)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                self.active += 1
                future.set_result(None)

    def rate_limited(self) -> None:
        """A call was told to slow down: halve the cap (once per cooldown)."""
        now = time.monotonic()
        if now - self._last_cut >= self.cooldown:
            self.limit = max(1, self.limit // 2)
            self._last_cut = now
        self._streak = 0

    def succeeded(self) -> None:
        """A call went through: after a cap's worth of successes, allow one more."""
        if self.limit < self.maximum:
            self._streak += 1
            if self._streak >= self.limit:
                self.limit += 1
                self._streak = 0
                self._wake()


def describe(exc: BaseException, timeout: float | None = None) -> str:
    """One line for an exception: its type and message."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"TimeoutError: no answer within {timeout:g} s" if timeout else "TimeoutError"
    return f"{type(exc).__name__}: {exc}"


if sys.version_info >= (3, 11):

    async def _with_timeout(aw: Awaitable[Any], timeout: float | None) -> Any:
        if timeout is None:
            return await aw
        async with asyncio.timeout(timeout):
            return await aw

else:  # pragma: no cover - Python 3.10

    async def _with_timeout(aw: Awaitable[Any], timeout: float | None) -> Any:
        return await asyncio.wait_for(aw, timeout)


async def call_with_policy(
    call: Callable[[], Awaitable[Any]],
    policy: Policy,
    limiter: AdaptiveLimiter | None,
    *,
    retries: int,
) -> tuple[Any, BaseException | None, int]:
    """Call ``call()`` until it succeeds: returns (result, last error or None, attempts)."""
    attempt = 0
    rate_hits = 0
    while True:
        attempt += 1
        error: BaseException
        if limiter is not None:
            await limiter.__aenter__()
        try:
            result = await _with_timeout(call(), policy.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
        else:
            if limiter is not None:
                limiter.succeeded()
            return result, None, attempt
        finally:
            if limiter is not None:
                await limiter.__aexit__()
        if policy.is_rate_limit(error):
            rate_hits += 1
            if limiter is not None:
                limiter.rate_limited()
            if rate_hits > policy.max_rate_limit_retries:
                return None, error, attempt
            await asyncio.sleep(policy.delay(rate_hits))
        elif attempt - rate_hits > retries:
            return None, error, attempt
        else:
            await asyncio.sleep(policy.delay(attempt - rate_hits))


async def _evaluate(
    name: str, evaluator: EvaluatorFn, output: Any, example: Example, work: Work
) -> Evaluation:
    # Evaluators are mostly deterministic code: a failure is reported, not
    # retried; a rate limit (an LLM judge) is waited out like the task's.
    if getattr(evaluator, "inline", False):
        # Runs on the loop without suspending: no timeout could interrupt it,
        # so skip the policy's machinery unless it asks to slow down.
        try:
            return await evaluator(output, example)
        except Exception as exc:
            if not work.policy.is_rate_limit(exc):
                return Evaluation(name, error=describe(exc, work.policy.timeout))
    evaluation, error, _ = await call_with_policy(
        lambda: evaluator(output, example), work.policy, None, retries=0
    )
    if error is not None:
        return Evaluation(name, error=describe(error, work.policy.timeout))
    return evaluation  # type: ignore[no-any-return]


async def run_unit(work: Work, unit: Unit, limiter: AdaptiveLimiter | None = None) -> Run:
    """Run one (example, repetition): the task, then every evaluator on its output."""
    example = unit.example
    started = time.time()
    trace_id = None
    if work.tracer is None:
        output, error, attempts = await call_with_policy(
            lambda: work.task(example), work.policy, limiter, retries=work.policy.retries
        )
    else:
        with work.tracer.task_span(example, unit.repetition) as span:
            output, error, attempts = await call_with_policy(
                lambda: work.task(example), work.policy, limiter, retries=work.policy.retries
            )
            span.finish(output, error)
        trace_id = span.trace_id
    evaluations: tuple[Evaluation, ...] = ()
    if error is None and work.evaluators:
        if len(work.evaluators) == 1:
            name, evaluator = work.evaluators[0]
            evaluations = (await _evaluate(name, evaluator, output, example, work),)
        else:
            evaluations = tuple(
                await asyncio.gather(
                    *(_evaluate(n, e, output, example, work) for n, e in work.evaluators)
                )
            )
    return Run(
        example=example,
        repetition=unit.repetition,
        output=output,
        error=None if error is None else describe(error, work.policy.timeout),
        started_at=started,
        ended_at=time.time(),
        attempts=attempts,
        evaluations=evaluations,
        index=unit.index,
        trace_id=trace_id,
    )
