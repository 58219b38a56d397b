"""Evaluators made of other evaluators: a weighted mean, all-pass and any-pass.

A child is any evaluator evalwire could run: a function whose parameters are
named from ``output``, ``expected`` (or ``reference``), ``input``,
``metadata`` and ``example`` (or a function of the output alone), returning
an :class:`~evalwire.models.Evaluation` or anything else evalwire reads as a
score in [0, 1]: a bool, a number, a ``(score, label, explanation)`` tuple, a
dict with a ``score``. Each child is called with only the arguments it
declares. When any child is async the composite is an async function;
otherwise it is a plain one.

A child that raises or reports an error makes the composite's evaluation an
error naming that child: an unknown score is never counted as a zero.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any

from evalwire.evaluators._calling import Child, ChildError, discard_awaitable, example_of, score_of
from evalwire.evaluators._evaluation import PASS_LABELS, clip, failed, graded, show, verdict
from evalwire.models import Evaluation, Example

__all__ = ["make_all_pass_evaluator", "make_any_pass_evaluator", "make_weighted_evaluator"]

# A plan is the composite's logic, written once for both sync and async: it
# yields the children to call next, receives their results, and returns the
# composite's evaluation. The drivers below do the calling.
Plan = Generator[Sequence[Child], list[Any], Evaluation]


def make_weighted_evaluator(
    evaluators: Mapping[Callable[..., Any], float] | Iterable[tuple[Callable[..., Any], float]],
) -> Callable[..., Any]:
    """An evaluator scoring the weighted mean of its children's scores.

    ``evaluators`` is a ``{evaluator: weight}`` dict or a list of
    ``(evaluator, weight)`` pairs (the list allows one evaluator twice).
    Weights must be finite and non-negative with a positive total; they are
    normalized, so ``{a: 2, b: 1}`` weighs ``a`` twice as much as ``b``.

    Returns ``weighted(output, expected, input, metadata, example) ->
    Evaluation`` with each child's score in its metadata. Async children run
    concurrently.
    """
    pairs = list(evaluators.items() if isinstance(evaluators, Mapping) else evaluators)
    if not pairs:
        raise ValueError("make_weighted_evaluator needs at least one evaluator")
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ValueError(
                "weighted needs a weight for each evaluator, as {evaluator: weight} "
                f"or (evaluator, weight) pairs; got {_named(pair)} without one"
            )
    children = _children("weighted", [fn for fn, _ in pairs])
    weights = [_weight(child, weight) for child, (_, weight) in zip(children, pairs, strict=True)]
    total = sum(weights)
    if total <= 0:
        raise ValueError("the weights of make_weighted_evaluator must not all be zero")
    shares = [weight / total for weight in weights]

    def plan() -> Plan:
        results = yield children
        scores = [score_of(child, result) for child, result in zip(children, results, strict=True)]
        score = sum(share * s for share, (s, _) in zip(shares, scores, strict=True))
        explanation = None
        if score < 1.0:
            parts = [
                f"{child.name} {s:.2f} x {share:.2f}"
                for child, share, (s, _) in zip(children, shares, scores, strict=True)
            ]
            reasons = [
                f"{child.name}: {evaluation.explanation}"
                for child, (_, evaluation) in zip(children, scores, strict=True)
                if evaluation.explanation
            ]
            explanation = "; ".join([", ".join(parts), *reasons])
        return graded(
            "weighted",
            score,
            explanation,
            metadata={
                "scores": {child.name: s for child, (s, _) in zip(children, scores, strict=True)},
                "weights": {
                    child.name: share for child, share in zip(children, shares, strict=True)
                },
            },
        )

    return _composite("weighted", children, plan)


def make_all_pass_evaluator(
    evaluators: Iterable[Callable[..., Any]],
    *,
    threshold: float = 1.0,
) -> Callable[..., Any]:
    """An evaluator that passes when every child passes.

    A child passes when its score is at least ``threshold`` (1.0 by default,
    so a pass/fail child must pass and a graded one must be perfect).
    Children run in order and the first failure ends the evaluation, so put
    cheap children (exact match, regex) before expensive ones (an LLM judge).

    Returns ``all_pass(output, expected, input, metadata, example) ->
    Evaluation`` scoring 1.0 (``"pass"``) or 0.0 (``"fail"``), explaining
    which child failed.
    """
    children = _children("all_pass", list(evaluators))
    _check_threshold(threshold)

    def plan() -> Plan:
        scores: dict[str, float] = {}
        for child in children:
            (result,) = yield (child,)
            score, evaluation = score_of(child, result)
            scores[child.name] = score
            if score < threshold:
                return verdict(
                    "all_pass",
                    False,
                    _failure(child, score, threshold, evaluation),
                    labels=PASS_LABELS,
                    metadata={"scores": scores},
                )
        return verdict("all_pass", True, labels=PASS_LABELS, metadata={"scores": scores})

    return _composite("all_pass", children, plan)


def make_any_pass_evaluator(
    evaluators: Iterable[Callable[..., Any]],
    *,
    threshold: float = 1.0,
) -> Callable[..., Any]:
    """An evaluator that passes when at least one child passes.

    A child passes when its score is at least ``threshold``. Children run in
    order and the first pass ends the evaluation.

    Returns ``any_pass(output, expected, input, metadata, example) ->
    Evaluation`` scoring 1.0 (``"pass"``) or 0.0 (``"fail"``), explaining
    why each child failed.
    """
    children = _children("any_pass", list(evaluators))
    _check_threshold(threshold)

    def plan() -> Plan:
        scores: dict[str, float] = {}
        failures: list[str] = []
        for child in children:
            (result,) = yield (child,)
            score, evaluation = score_of(child, result)
            scores[child.name] = score
            if score >= threshold:
                return verdict("any_pass", True, labels=PASS_LABELS, metadata={"scores": scores})
            failures.append(_failure(child, score, threshold, evaluation))
        return verdict(
            "any_pass",
            False,
            "no evaluator passed: " + "; ".join(failures),
            labels=PASS_LABELS,
            metadata={"scores": scores},
        )

    return _composite("any_pass", children, plan)


def _composite(
    name: str, children: Sequence[Child], plan: Callable[[], Plan]
) -> Callable[..., Any]:
    """The composite function, async exactly when some child is."""
    if any(child.is_async for child in children):

        async def composite_async(
            output: Any,
            expected: Mapping[str, Any] | None = None,
            input: Mapping[str, Any] | None = None,  # noqa: A002 - evalwire binds this name
            metadata: Mapping[str, Any] | None = None,
            example: Any = None,
        ) -> Evaluation:
            return await _drive_async(
                name, plan(), example_of(expected, input, metadata, example), output
            )

        fn: Callable[..., Any] = composite_async
    else:

        def composite(
            output: Any,
            expected: Mapping[str, Any] | None = None,
            input: Mapping[str, Any] | None = None,  # noqa: A002 - evalwire binds this name
            metadata: Mapping[str, Any] | None = None,
            example: Any = None,
        ) -> Evaluation:
            return _drive(name, plan(), example_of(expected, input, metadata, example), output)

        fn = composite
    fn.__name__ = name
    fn.__qualname__ = name
    return fn


def _drive(name: str, plan: Plan, example: Example, output: Any) -> Evaluation:
    try:
        batch = next(plan)
        while True:
            batch = plan.send([_call(child, example, output) for child in batch])
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except ChildError as exc:
        return failed(name, str(exc))


async def _drive_async(name: str, plan: Plan, example: Example, output: Any) -> Evaluation:
    import asyncio  # only async composites need it

    try:
        batch = next(plan)
        while True:
            outcomes = await asyncio.gather(
                *(_call_async(child, example, output) for child in batch),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            batch = plan.send(list(outcomes))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except ChildError as exc:
        return failed(name, str(exc))


def _call(child: Child, example: Example, output: Any) -> Any:
    try:
        result = child.call(example, output)
    except Exception as exc:  # the child's failure is the composite's error, with its reason
        raise ChildError(f"{child.name} raised {type(exc).__name__}: {exc}") from exc
    if discard_awaitable(result):
        # It looked synchronous when the composite was built, so nothing will await it.
        raise ChildError(
            f"{child.name} returned an awaitable but is not an async function; "
            "define it with `async def` so the composite is built async"
        )
    return result


async def _call_async(child: Child, example: Example, output: Any) -> Any:
    try:
        result = child.call(example, output)
        if child.is_async or hasattr(result, "__await__"):
            result = await result
    except Exception as exc:  # the child's failure is the composite's error, with its reason
        raise ChildError(f"{child.name} raised {type(exc).__name__}: {exc}") from exc
    return result


def _children(composite: str, evaluators: list[Callable[..., Any]]) -> list[Child]:
    if not evaluators:
        raise ValueError("a composite evaluator needs at least one evaluator")
    for fn in evaluators:
        if isinstance(fn, tuple) and len(fn) == 2 and callable(fn[0]):
            # Most likely {evaluator: weight} pairs meant for make_weighted_evaluator.
            raise ValueError(
                f"{composite} takes evaluators without weights (weights are for weighted); "
                f"got ({_named(fn[0])}, {fn[1]!r})"
            )
    children = [Child.of(fn) for fn in evaluators]
    # Two children built from one factory share a name; number the repeats so
    # each keeps its own entry in the explanation and metadata.
    seen: dict[str, int] = {}
    named = []
    for child in children:
        seen[child.name] = seen.get(child.name, 0) + 1
        if seen[child.name] > 1:
            child = dataclasses.replace(child, name=f"{child.name}#{seen[child.name]}")
        named.append(child)
    return named


def _named(value: Any) -> str:
    """A function by its name, anything else by its (short) repr."""
    name = getattr(value, "__name__", None) if callable(value) else None
    return name if isinstance(name, str) else show(value)


def _weight(child: Child, weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ValueError(f"the weight of {child.name} must be a number, not {weight!r}")
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(
            f"the weight of {child.name} must be finite and non-negative, not {weight!r}"
        )
    return float(weight)


def _check_threshold(threshold: float) -> None:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 <= threshold <= 1
    ):
        raise ValueError(f"threshold must be a number in [0, 1], not {threshold!r}")


def _failure(child: Child, score: float, threshold: float, evaluation: Evaluation) -> str:
    text = f"{child.name} scored {score:.2f} (needs {threshold:g})"
    if evaluation.explanation:
        text += f": {evaluation.explanation}"
    return clip(text, 300)
