"""Reading a score out of whatever an LLM judge answered.

A judge may answer with a structured object (a dict, or a pydantic-like
object with attributes), a chat message whose ``content`` is text, plain text
(JSON, a bare verdict, or reasoning whose last line is the verdict), a bool or
a number. Anything that cannot be read is a :class:`JudgeAnswerError` carrying
the reason: it is reported, never scored as zero.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from evalwire.evaluators._evaluation import show

#: Verdict words understood when the caller gives no ``labels``.
DEFAULT_LABELS: dict[str, float] = {
    "pass": 1.0,
    "fail": 0.0,
    "true": 1.0,
    "false": 0.0,
    "yes": 1.0,
    "no": 0.0,
    "correct": 1.0,
    "incorrect": 0.0,
}

_FENCE = re.compile(r"^```[\w-]*\s*\n(.*?)\n?```$", re.DOTALL)
_PREFIX = re.compile(
    r"^(?:final\s+)?(?:score|verdict|label|answer|rating|grade|result)\s*[:=]\s*", re.IGNORECASE
)
# Markdown emphasis, quotes and closing punctuation around a verdict word.
_DECORATION = "*_`\"'#>.!,;: \t"


class JudgeAnswerError(ValueError):
    """The judge's answer holds no score that can be read; the message says why."""


@dataclass(frozen=True)
class Verdict:
    """A judge's answer read as an evaluation."""

    score: float
    label: str | None = None
    explanation: str | None = None


@dataclass(frozen=True)
class VerdictReader:
    """How to read a judge's answer: which field holds the score and what it may be."""

    result_key: str = "score"
    explanation_key: str = "explanation"
    labels: Mapping[str, float] | None = None
    score_range: tuple[float, float] = (0.0, 1.0)
    schema: Any = None

    def read(self, answer: Any) -> Verdict:
        """The verdict in ``answer``; raises :class:`JudgeAnswerError` if there is none."""
        answer = _message_content(answer, self.result_key)
        if isinstance(answer, str):
            return self._from_text(answer)
        if isinstance(answer, Mapping):
            return self._from_fields(self._validated(dict(answer)))
        if isinstance(answer, (bool, int, float)):
            return self._from_value(answer, None, None)
        if hasattr(answer, self.result_key):
            return self._from_fields(_AttributeFields(answer))
        raise JudgeAnswerError(
            f"the judge answered a {type(answer).__name__} with no {self.result_key!r} field: "
            f"{show(answer)}"
        )

    def _from_text(self, text: str) -> Verdict:
        body = text.strip()
        fenced = _FENCE.match(body)
        if fenced:
            body = fenced.group(1).strip()
        decoded = _json_or_none(body)
        if isinstance(decoded, dict):
            return self._from_fields(self._validated(decoded))
        if isinstance(decoded, (bool, int, float)):
            return self._from_value(decoded, None, None)
        start, end = body.find("{"), body.rfind("}")
        if 0 <= start < end:
            embedded = _json_or_none(body[start : end + 1])
            if isinstance(embedded, dict):
                verdict = self._from_fields(self._validated(embedded))
                if verdict.explanation is None and body[:start].strip():
                    return Verdict(verdict.score, verdict.label, body[:start].strip())
                return verdict
        # Reasoning first, verdict last: what prompts usually ask judges for.
        lines = [line for line in body.splitlines() if line.strip()]
        if lines:
            word = _PREFIX.sub("", lines[-1].strip(_DECORATION)).strip(_DECORATION)
            reasoning = "\n".join(lines[:-1]).strip() or None
            try:
                return self._from_value(word, None, reasoning)
            except JudgeAnswerError:
                pass
        raise JudgeAnswerError(
            f"could not read a verdict from the judge's answer {show(text, 200)}; answer "
            f"with JSON holding {self.result_key!r}, a number, or one of "
            f"{', '.join(map(repr, self._labels()))} as the last line"
        )

    def _from_fields(self, fields: Mapping[str, Any] | _AttributeFields) -> Verdict:
        if self.result_key not in fields:
            raise JudgeAnswerError(
                f"the judge's answer has no {self.result_key!r} field (fields: "
                f"{', '.join(map(repr, fields.keys())) or 'none'})"
            )
        explanation = fields.get(self.explanation_key)
        label = fields.get("label") if self.result_key != "label" else None
        return self._from_value(
            fields.get(self.result_key),
            label if isinstance(label, str) else None,
            explanation if isinstance(explanation, str) else None,
        )

    def _from_value(self, value: Any, label: str | None, explanation: str | None) -> Verdict:
        if isinstance(value, bool):
            return Verdict(
                1.0 if value else 0.0, label or ("pass" if value else "fail"), explanation
            )
        if isinstance(value, (int, float)):
            return Verdict(self._scaled(value), label, explanation)
        if isinstance(value, str):
            word = value.strip().strip(_DECORATION)
            number = _float_or_none(word)
            if number is not None:
                return Verdict(self._scaled(number), label, explanation)
            labels = self._labels()
            key = word.casefold()
            if key in labels:
                return Verdict(labels[key], label or key, explanation)
            raise JudgeAnswerError(
                f"the judge's verdict {show(value)} is not a number nor one of "
                f"{', '.join(map(repr, labels))}"
            )
        raise JudgeAnswerError(f"the judge's {self.result_key!r} is {show(value)}, not a score")

    def _scaled(self, value: float) -> float:
        low, high = self.score_range
        if math.isnan(value) or not low <= value <= high:
            raise JudgeAnswerError(
                f"the judge's score {value!r} is outside the score range [{low:g}, {high:g}]"
            )
        return (value - low) / (high - low)

    def _labels(self) -> Mapping[str, float]:
        return DEFAULT_LABELS if self.labels is None else self.labels

    def _validated(self, data: dict[str, Any]) -> Mapping[str, Any] | _AttributeFields:
        """``data`` checked against ``schema`` when it is a class (pydantic-like or plain)."""
        schema = self.schema
        if not isinstance(schema, type):
            return data
        validate: Callable[[Any], Any] | None = getattr(schema, "model_validate", None)
        try:
            instance = validate(data) if validate is not None else schema(**data)
        except Exception as exc:  # the schema's own error type says what was wrong
            raise JudgeAnswerError(
                f"the judge's answer does not fit {schema.__name__}: {exc}"
            ) from None
        return _AttributeFields(instance)


class _AttributeFields:
    """A structured answer's attributes seen as the fields of a mapping."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and hasattr(self._obj, name)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self._obj, name, default)

    def keys(self) -> list[str]:
        fields = getattr(type(self._obj), "model_fields", None)
        if isinstance(fields, Mapping):
            return list(fields)
        return (
            [k for k in vars(self._obj) if not k.startswith("_")]
            if hasattr(self._obj, "__dict__")
            else []
        )


def _message_content(answer: Any, result_key: str) -> Any:
    """A chat message's text (LangChain's ``AIMessage`` and the like), else the answer."""
    if isinstance(answer, (str, Mapping, bool, int, float)) or hasattr(answer, result_key):
        return answer
    content = getattr(answer, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Multi-part content: keep the text parts, in order.
        parts = [
            part if isinstance(part, str) else part.get("text", "")
            for part in content
            if isinstance(part, str)
            or (isinstance(part, Mapping) and part.get("type", "text") == "text")
        ]
        return "".join(str(p) for p in parts)
    return answer


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
