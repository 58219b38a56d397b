"""The unit of work: timeouts, retries, back-off, rate limits, evaluator errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from evalwire.executor import Unit
from evalwire.models import Evaluation, Example
from evalwire.unit import AdaptiveLimiter, Policy, Work, run_unit

EXAMPLE = Example("e1", {"q": 1}, {"a": 1})
UNIT = Unit(0, EXAMPLE, 1)


def work(task: Any, *evaluators: tuple[str, Any], **policy: Any) -> Work:
    return Work("exp", task, tuple(evaluators), Policy(**{"backoff": 0.001, **policy}))


def run(w: Work, limiter: AdaptiveLimiter | None = None) -> Any:
    return asyncio.run(run_unit(w, UNIT, limiter))


async def echo(example: Example) -> Any:
    return example.input["q"]


def test_a_successful_unit_carries_output_and_evaluations() -> None:
    async def ev(output: Any, example: Example) -> Evaluation:
        return Evaluation("same", score=float(output == example.expected["a"]))

    result = run(work(echo, ("same", ev)))
    assert result.output == 1 and result.error is None and result.attempts == 1
    assert result.evaluations == (Evaluation("same", score=1.0),)


def test_a_timeout_really_stops_waiting() -> None:
    async def slow(example: Example) -> None:
        await asyncio.sleep(10)

    started = time.perf_counter()
    result = run(work(slow, timeout=0.05, retries=0))
    assert time.perf_counter() - started < 2
    assert result.error is not None and result.error.startswith("TimeoutError")


def test_a_failing_task_is_retried_then_succeeds() -> None:
    calls = []

    async def flaky(example: Example) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return "ok"

    result = run(work(flaky, retries=3))
    assert result.output == "ok" and result.attempts == 3 and result.error is None


def test_a_task_failing_past_its_retries_is_an_error_run_without_evaluations() -> None:
    async def broken(example: Example) -> None:
        raise ValueError("bad input")

    async def ev(output: Any, example: Example) -> Evaluation:
        raise AssertionError("evaluators do not run on failed tasks")

    result = run(work(broken, ("ev", ev), retries=2))
    assert result.error == "ValueError: bad input" and result.attempts == 3
    assert result.evaluations == ()


class RateLimitError(Exception):
    pass


def test_rate_limit_errors_are_waited_out_without_using_retries() -> None:
    calls = []

    async def limited(example: Example) -> str:
        calls.append(1)
        if len(calls) <= 4:
            raise RateLimitError("slow down")
        return "ok"

    result = run(work(limited, retries=0))
    assert result.output == "ok" and result.attempts == 5


def test_configured_rate_limit_error_names_match_by_class_name() -> None:
    class Throttled(Exception):
        pass

    policy = Policy(rate_limit_errors=("Throttled",))
    assert policy.is_rate_limit(Throttled()) and not policy.is_rate_limit(ValueError())


def test_an_exception_with_http_status_429_is_a_rate_limit() -> None:
    exc = Exception("too many")
    exc.status_code = 429  # type: ignore[attr-defined]
    assert Policy().is_rate_limit(exc)


def test_an_evaluator_error_is_recorded_on_its_evaluation_not_raised() -> None:
    async def ev(output: Any, example: Example) -> Evaluation:
        raise KeyError("expected_output")

    result = run(work(echo, ("strict", ev)))
    assert result.error is None
    assert result.evaluations[0].error == "KeyError: 'expected_output'"
    assert result.evaluations[0].score is None


def test_back_off_grows_exponentially_with_jitter() -> None:
    policy = Policy(backoff=1.0)
    for attempt in (1, 2, 3):
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(0.5 * 2 ** (attempt - 1) <= d <= 1.5 * 2 ** (attempt - 1) for d in delays)
        assert len(set(delays)) > 1


def test_the_limiter_halves_on_a_rate_limit_and_regrows_on_success() -> None:
    limiter = AdaptiveLimiter(8, cooldown=0)
    limiter.rate_limited()
    assert limiter.limit == 4
    limiter.rate_limited()
    assert limiter.limit == 2
    for _ in range(2):
        limiter.succeeded()
    assert limiter.limit == 3


def test_the_limiter_never_lets_more_than_its_limit_in() -> None:
    limiter = AdaptiveLimiter(3)
    peak = 0

    async def one() -> None:
        nonlocal peak
        async with limiter:
            peak = max(peak, limiter.active)
            await asyncio.sleep(0.001)

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(30)))

    asyncio.run(main())
    assert peak == 3 and limiter.active == 0


class InlineEvaluator:
    """Stands for an adapter's quick sync evaluator: called without the policy's timeout."""

    inline = True

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.calls = 0

    async def __call__(self, output: Any, example: Example) -> Evaluation:
        self.calls += 1
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return Evaluation("quick", score=result)


def test_an_inline_evaluator_error_is_recorded_after_one_call() -> None:
    evaluator = InlineEvaluator(ValueError("bad output"))
    result = run(work(echo, ("quick", evaluator)))
    assert result.evaluations[0].error == "ValueError: bad output" and evaluator.calls == 1


def test_an_inline_evaluator_told_to_slow_down_is_retried() -> None:
    evaluator = InlineEvaluator(RateLimitError("429"), 1.0)
    result = run(work(echo, ("quick", evaluator)))
    assert result.evaluations[0].score == 1.0 and evaluator.calls == 2
