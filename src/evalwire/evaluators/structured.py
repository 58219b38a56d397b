"""Evaluators for structured (JSON) outputs: key-by-key matching and JSON Schema validation."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from evalwire.evaluators._compare import json_equal
from evalwire.evaluators._evaluation import (
    PASS_LABELS,
    evaluator,
    graded,
    no_output,
    show,
    verdict,
)
from evalwire.evaluators._expected import DEFAULT_EXPECTED_KEY, ExpectedReader, ExpectedValueError
from evalwire.models import Evaluation

__all__ = ["make_json_match_evaluator", "make_schema_evaluator"]

_ABSENT = object()


def make_json_match_evaluator(
    keys: Iterable[str] | None = None,
    *,
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
    parse: Literal["json", "literal"] = "json",
) -> Callable[..., Evaluation]:
    """An evaluator scoring the fraction of keys whose values equal the expected ones.

    The output and the expected value are each a dict or the JSON text of an
    object (``parse="literal"`` reads expected text written as a Python dict
    instead). ``keys`` names the keys to check; by default every key of the
    expected object is checked, so extra keys in the output do not count
    against it. Values are compared as JSON values (``1`` is not ``true`` nor
    ``"1"``); a key absent from both sides counts as equal. An expected object
    with nothing to check scores 1.0.

    Returns ``json_match(output, expected) -> Evaluation`` whose explanation
    names the keys that differed; an output that is not a JSON object scores 0.
    """
    checked = None if keys is None else _key_list(keys)
    reader = ExpectedReader.of(expected_key, parse=parse)

    @evaluator("json_match")
    def json_match(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        want = reader.value(expected)
        if not isinstance(want, Mapping):
            raise ExpectedValueError(
                f"expected {expected_key!r} is not a JSON object: {show(want)}"
            )
        if output is None:
            return no_output("json_match", "no_match")
        got, problem = _json_object(output)
        if got is None:
            return verdict("json_match", False, problem)
        names = list(want) if checked is None else checked
        if not names:
            return verdict("json_match", True)
        differed = [
            name for name in names if not _same(got.get(name, _ABSENT), want.get(name, _ABSENT))
        ]
        score = (len(names) - len(differed)) / len(names)
        if not differed:
            return verdict("json_match", True)
        details = "; ".join(
            f"{name!r}: output {_present(got, name)}, expected {_present(want, name)}"
            for name in differed
        )
        return graded(
            "json_match",
            score,
            f"{len(differed)} of {len(names)} keys differed: {details}",
            label="no_match",
            metadata={"differed": differed},
        )

    return json_match


def make_schema_evaluator(
    schema: Mapping[str, Any] | bool,
    *,
    parse_output: bool = True,
) -> Callable[..., Evaluation]:
    """An evaluator that passes when the output conforms to a JSON Schema.

    The schema is checked now (an invalid one raises :class:`ValueError`) and
    validated with the draft its ``$schema`` names (the latest draft when it
    names none), ``format`` keywords included. A string output is decoded as
    JSON first unless ``parse_output=False``; text that is not JSON fails.
    Needs the ``jsonschema`` package, imported here rather than with
    :mod:`evalwire.evaluators` so that importing evalwire stays fast.

    Returns ``schema(output, expected=None) -> Evaluation`` scoring 1.0 (``"pass"``) or 0.0
    (``"fail"``), explaining the most relevant violation.
    """
    try:
        import jsonschema.exceptions
        import jsonschema.validators
    except ImportError as exc:
        raise ImportError(
            "make_schema_evaluator needs the jsonschema package; install it with "
            "`pip install jsonschema`"
        ) from exc

    document: Any = dict(schema) if isinstance(schema, Mapping) else schema
    validator_class = jsonschema.validators.validator_for(document)
    try:
        validator_class.check_schema(document)
    except jsonschema.exceptions.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None
    format_checker = getattr(validator_class, "FORMAT_CHECKER", None)
    validator = validator_class(document, format_checker=format_checker)

    @evaluator("schema")
    def schema_(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        # ``expected`` is unused; accepted so every built-in is callable as (output, expected).
        if output is None:
            return no_output("schema", PASS_LABELS[1])
        instance = output
        if parse_output and isinstance(output, (str, bytes, bytearray)):
            try:
                instance = json.loads(output)
            except ValueError as exc:
                return verdict(
                    "schema",
                    False,
                    f"output is not valid JSON ({exc}): {show(output)}",
                    labels=PASS_LABELS,
                )
        errors = list(validator.iter_errors(instance))
        if not errors:
            return verdict("schema", True, labels=PASS_LABELS)
        best = jsonschema.exceptions.best_match(errors)
        where = best.json_path if best is not None else "$"
        message = best.message if best is not None else "invalid"
        return verdict(
            "schema",
            False,
            f"at {where}: {message}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            labels=PASS_LABELS,
            metadata={"errors": len(errors)},
        )

    return schema_


def _key_list(keys: Iterable[str]) -> list[str]:
    if isinstance(keys, str):
        # One key name, not its characters.
        return [keys]
    return list(keys)


def _json_object(value: Any) -> tuple[dict[str, Any] | None, str]:
    """The output as a dict, or ``None`` and why it is not one."""
    if isinstance(value, Mapping):
        return dict(value), ""
    if isinstance(value, (str, bytes, bytearray)):
        try:
            decoded = json.loads(value)
        except ValueError as exc:
            return None, f"output is not valid JSON ({exc}): {show(value)}"
        if isinstance(decoded, dict):
            return decoded, ""
        return None, f"output is JSON but not an object: {show(decoded)}"
    return None, f"output is a {type(value).__name__}, not a JSON object: {show(value)}"


def _same(a: Any, b: Any) -> bool:
    if a is _ABSENT or b is _ABSENT:
        return a is b
    return json_equal(a, b)


def _present(obj: Mapping[str, Any], name: str) -> str:
    return show(obj[name]) if name in obj else "absent"
