"""LLM-as-a-judge: a model reads the output (and the expected answer) and scores it.

The model is duck-typed; nothing here imports an LLM library. It may be

* a function ``model(prompt) -> answer``, sync or ``async def``;
* an object with ``.ainvoke(prompt)`` and/or ``.invoke(prompt)``, such as a
  LangChain chat model (``ainvoke`` is preferred, so the judge is async).

With ``output_schema`` and a model that has ``.with_structured_output``, the
structured model is bound once, here, as upstream evalwire did. The answer may
be text, a chat message, a dict or an object with attributes; see
:mod:`evalwire.evaluators._verdict` for how a score is read from it.

Judge failures — the model raised, the answer holds no readable score, the
prompt could not be filled — are returned as an Evaluation whose ``error``
gives the reason (``on_error="record"``, the default), or raised
(``on_error="raise"``) so that the runner's retries and rate-limit back-off
see the model's own exception. Never a silent zero.
"""

from __future__ import annotations

import inspect
import json
import re
import string
from collections.abc import Callable, Mapping
from typing import Any, Literal

from evalwire.binding import is_async
from evalwire.evaluators._calling import discard_awaitable
from evalwire.evaluators._evaluation import clip, evaluator, failed, no_output, show
from evalwire.evaluators._expected import DEFAULT_EXPECTED_KEY, read_expected_value
from evalwire.evaluators._verdict import JudgeAnswerError, Verdict, VerdictReader
from evalwire.models import Evaluation

__all__ = ["JudgeAnswerError", "make_llm_judge_evaluator"]

#: Placeholders a prompt template may use.
TEMPLATE_FIELDS = ("output", "expected_output", "expected", "input", "metadata")

NAME = "llm_judge"

_LITERAL_BRACES = "write literal braces as {{ and }}"


def make_llm_judge_evaluator(
    model: Any,
    prompt_template: str,
    output_schema: Any = None,
    *,
    result_key: str = "score",
    explanation_key: str = "explanation",
    labels: Mapping[str, float] | None = None,
    score_range: tuple[float, float] = (0.0, 1.0),
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
    on_error: Literal["record", "raise"] = "record",
    error_callback: Callable[[BaseException], None] | None = None,
) -> Callable[..., Any]:
    """An evaluator that asks a judge model to score the output.

    Args:
        model: the judge (see the module docstring for what it may be).
        prompt_template: :meth:`str.format` text using ``{output}``,
            ``{expected_output}`` (the value at ``expected_key``), ``{expected}``,
            ``{input}`` and ``{metadata}`` (dicts: ``{input[question]}`` works).
            Write literal braces as ``{{`` and ``}}``. Checked now: an unknown
            placeholder raises :class:`ValueError`.
        output_schema: a class for the structured answer (a pydantic model or
            any class taking the fields as keyword arguments). Bound with
            ``model.with_structured_output`` when the model has it; otherwise
            a JSON answer is validated against it.
        result_key: the answer field holding the score.
        explanation_key: the answer field holding the judge's reasoning.
        labels: verdict words and their scores, e.g. ``{"correct": 1,
            "partially correct": 0.5, "incorrect": 0}``; by default
            pass/fail, true/false, yes/no and correct/incorrect.
        score_range: the scale the judge scores on, e.g. ``(1, 5)``; scores are
            rescaled to [0, 1] and a score outside the range is an error.
        expected_key: where ``{expected_output}`` is read from; only read when
            the template uses it, so reference-free judges need no expected value.
        on_error: ``"record"`` returns judge failures as evaluation errors,
            ``"raise"`` raises them.
        error_callback: called with each judge failure's exception first.

    Returns ``llm_judge(output, expected, input, metadata) -> Evaluation``
    (``annotator_kind="LLM"``), an ``async def`` when the model is async.
    """
    on_error = _check_on_error(on_error)
    if not isinstance(result_key, str) or not result_key:
        raise ValueError(f"result_key must be a non-empty string, not {result_key!r}")
    needs_expected = "expected_output" in _template_fields(prompt_template)
    reader = VerdictReader(
        result_key=result_key,
        explanation_key=explanation_key,
        labels=_check_labels(labels),
        score_range=_check_range(score_range),
        schema=output_schema,
    )
    target = model
    if output_schema is not None and hasattr(model, "with_structured_output"):
        target = model.with_structured_output(output_schema)
    call, is_async = _judge_call(target)

    def prompt_for(
        output: Any,
        expected: Mapping[str, Any] | None,
        input: Mapping[str, Any] | None,  # noqa: A002 - evalwire binds this name
        metadata: Mapping[str, Any] | None,
    ) -> str:
        fields: dict[str, Any] = {
            "output": _render(output),
            "expected": dict(expected or {}),
            "input": dict(input or {}),
            "metadata": dict(metadata or {}),
        }
        if needs_expected:
            fields["expected_output"] = _render(read_expected_value(expected, expected_key))
        try:
            return prompt_template.format_map(fields)
        except (KeyError, IndexError, AttributeError, ValueError, TypeError) as exc:
            raise JudgeAnswerError(
                f"could not fill the prompt template: {type(exc).__name__}: {exc}"
            ) from None

    def failure(exc: BaseException, reason: str) -> Evaluation:
        if error_callback is not None:
            error_callback(exc)
        if on_error == "raise":
            raise exc
        return failed(NAME, reason, annotator_kind="LLM")

    def judged(answer: Any) -> Evaluation:
        try:
            verdict = reader.read(answer)
        except JudgeAnswerError as exc:
            return failure(exc, str(exc))
        return _evaluation(verdict)

    def question(
        output: Any,
        expected: Mapping[str, Any] | None,
        input: Mapping[str, Any] | None,  # noqa: A002 - evalwire binds this name
        metadata: Mapping[str, Any] | None,
    ) -> str | Evaluation:
        """The prompt to ask the judge, or the evaluation when there is nothing to ask."""
        try:
            prompt = prompt_for(output, expected, input, metadata)
        except JudgeAnswerError as exc:
            return failure(exc, str(exc))
        # The prompt is filled first so that a missing expected value is reported even then.
        return no_output(NAME) if output is None else prompt

    if is_async:

        @evaluator(NAME, annotator_kind="LLM")
        async def llm_judge_async(
            output: Any,
            expected: Mapping[str, Any] | None = None,
            input: Mapping[str, Any] | None = None,  # noqa: A002 - evalwire binds this name
            metadata: Mapping[str, Any] | None = None,
        ) -> Evaluation:
            prompt = question(output, expected, input, metadata)
            if isinstance(prompt, Evaluation):
                return prompt
            try:
                answer = call(prompt)
                if inspect.isawaitable(answer):
                    answer = await answer
            except Exception as exc:  # any model failure is this evaluation's error
                return failure(exc, _model_failure(exc))
            return judged(answer)

        return llm_judge_async

    @evaluator(NAME, annotator_kind="LLM")
    def llm_judge(
        output: Any,
        expected: Mapping[str, Any] | None = None,
        input: Mapping[str, Any] | None = None,  # noqa: A002 - evalwire binds this name
        metadata: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        prompt = question(output, expected, input, metadata)
        if isinstance(prompt, Evaluation):
            return prompt
        try:
            answer = call(prompt)
        except Exception as exc:  # any model failure is this evaluation's error
            return failure(exc, _model_failure(exc))
        if discard_awaitable(answer):
            error = TypeError(
                "the judge model returned an awaitable from a plain function; "
                "define it with `async def` (or give it .ainvoke) so the judge is async"
            )
            return failure(error, str(error))
        return judged(answer)

    return llm_judge


def _judge_call(target: Any) -> tuple[Callable[[str], Any], bool]:
    """How to ask ``target`` a question, and whether the answer must be awaited."""
    if callable(getattr(target, "ainvoke", None)):
        return target.ainvoke, True
    if callable(getattr(target, "invoke", None)):
        return target.invoke, False
    if callable(target):
        return target, is_async(target)
    raise TypeError(
        f"the judge model must be a callable or have .invoke/.ainvoke, not {type(target).__name__}"
    )


def _template_fields(template: str) -> set[str]:
    """The placeholders ``template`` uses; raises ValueError for unknown or malformed ones."""
    if not isinstance(template, str):
        raise ValueError(f"prompt_template must be a string, not {type(template).__name__}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"prompt_template is not a valid format string ({exc}); {_LITERAL_BRACES}"
        ) from None
    roots = set()
    for _, field, _, _ in parsed:
        if field is None:
            continue
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if root not in TEMPLATE_FIELDS:
            raise ValueError(
                f"prompt_template uses {{{field}}}; placeholders are "
                f"{', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)} ({_LITERAL_BRACES})"
            )
        roots.add(root)
    return roots


def _render(value: Any) -> str:
    """A value as prompt text: strings as they are, structures as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _evaluation(verdict: Verdict) -> Evaluation:
    return Evaluation(
        name=NAME,
        score=verdict.score,
        label=verdict.label,
        explanation=None if verdict.explanation is None else clip(verdict.explanation, 1000),
        annotator_kind="LLM",
    )


def _model_failure(exc: BaseException) -> str:
    return f"the judge model raised {type(exc).__name__}: {clip(str(exc), 300) or show(exc)}"


def _check_on_error(on_error: str) -> Literal["record", "raise"]:
    if on_error == "reraise":  # upstream's spelling
        return "raise"
    if on_error == "silent":
        raise ValueError(
            "on_error='silent' (upstream) scored judge failures as 0, hiding them; use "
            "on_error='record' to report them as evaluation errors, or 'raise'"
        )
    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error must be 'record' or 'raise', not {on_error!r}")
    return on_error  # type: ignore[return-value]


def _check_labels(labels: Mapping[str, float] | None) -> dict[str, float] | None:
    if labels is None:
        return None
    checked = {}
    for word, score in labels.items():
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            raise ValueError(
                f"the score of label {word!r} must be a number in [0, 1], not {score!r}"
            )
        checked[str(word).strip().casefold()] = float(score)
    if not checked:
        raise ValueError("labels must name at least one verdict")
    return checked


def _check_range(score_range: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(bound) for bound in score_range)
    except (TypeError, ValueError):
        raise ValueError(f"score_range must be a (low, high) pair, not {score_range!r}") from None
    if not low < high:
        raise ValueError(f"score_range must have low < high, not {score_range!r}")
    return low, high
