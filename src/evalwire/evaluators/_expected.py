"""Reading the expected value of an example.

An evaluator receives the example's ``expected`` dict and reads one key of it
(``expected_key``, by default ``"expected_output"``, upstream's column). The
value is used as given: a string that looks like a number or a list stays a
string. Two opt-ins turn text into structure:

* ``separator="|"`` splits a delimited string into items, for evaluators that
  compare against a list (membership, top-k, contains, ...).
* ``parse="literal"`` evaluates a string with :func:`ast.literal_eval`
  (datasets uploaded by upstream evalwire hold lists as ``"['a', 'b']"``);
  ``parse="json"`` decodes JSON text. A string that does not parse is an
  error for that example, never silently kept as text.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Literal

Parse = Literal["none", "literal", "json"]

DEFAULT_EXPECTED_KEY = "expected_output"

_PARSE_MODES: tuple[str, ...] = ("none", "literal", "json")


class ExpectedValueError(Exception):
    """The example's expected value is missing or unreadable.

    Evaluators report it as an :class:`~evalwire.models.Evaluation` whose
    ``error`` is this message: a dataset problem is not a score of zero.
    """


def check_parse(parse: str | None) -> Parse:
    """Validate a ``parse=`` option when a factory is called (``None`` means ``"none"``)."""
    if parse is None:
        return "none"
    if parse not in _PARSE_MODES:
        raise ValueError(
            f"parse must be one of {', '.join(map(repr, _PARSE_MODES))}, not {parse!r}"
        )
    return parse  # type: ignore[return-value]


def check_separator(separator: str | None) -> str | None:
    """Validate a ``separator=`` option when a factory is called."""
    if separator is not None and (not isinstance(separator, str) or separator == ""):
        raise ValueError(f"separator must be a non-empty string or None, not {separator!r}")
    return separator


def read_expected(expected: Mapping[str, Any] | None, key: str | None) -> Any:
    """The value at ``key`` in ``expected``; ``key=None`` means the whole dict.

    Raises :class:`ExpectedValueError` naming the missing key and the keys that
    do exist.
    """
    if expected is None:
        expected = {}
    if not isinstance(expected, Mapping):
        raise ExpectedValueError(f"expected values must be a dict, got {type(expected).__name__}")
    if key is None:
        return dict(expected)
    if key not in expected:
        present = ", ".join(repr(k) for k in expected) or "none"
        raise ExpectedValueError(
            f"expected key {key!r} is missing from the example (keys present: {present}); "
            "set expected_key= to the key that holds the expected value"
        )
    return expected[key]


def parse_text(value: Any, parse: Parse, *, what: str = "expected value") -> Any:
    """Turn ``value`` into structure when ``parse`` asks for it and it is a string."""
    if parse == "none" or not isinstance(value, str):
        return value
    try:
        if parse == "literal":
            return ast.literal_eval(value.strip())
        return json.loads(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        # literal_eval's messages name AST nodes, which helps nobody; JSON's give the position.
        kind, detail = ("a Python literal", "") if parse == "literal" else ("JSON", f": {exc}")
        raise ExpectedValueError(
            f"{what} is {_short(value)}, which could not be parsed as {kind} "
            f"(parse={parse!r}){detail}"
        ) from None


def read_expected_value(
    expected: Mapping[str, Any] | None, key: str | None, parse: Parse = "none"
) -> Any:
    """:func:`read_expected`, then :func:`parse_text`."""
    what = "the expected dict" if key is None else f"expected {key!r}"
    return parse_text(read_expected(expected, key), parse, what=what)


@dataclass(frozen=True)
class ExpectedReader:
    """Where an evaluator finds its expected value, and how it reads it.

    Made with :meth:`of` when the factory is called, so that a bad ``parse=``
    or ``separator=`` is refused then, not on every example.
    """

    key: str | None = DEFAULT_EXPECTED_KEY
    parse: Parse = "none"
    separator: str | None = None

    @classmethod
    def of(
        cls, key: str | None, *, parse: str | None = None, separator: str | None = None
    ) -> ExpectedReader:
        """A reader with its options checked (:func:`check_parse`, :func:`check_separator`)."""
        return cls(key, check_parse(parse), check_separator(separator))

    def value(self, expected: Mapping[str, Any] | None) -> Any:
        """The expected value (see :func:`read_expected_value`)."""
        return read_expected_value(expected, self.key, self.parse)

    def items(self, expected: Mapping[str, Any] | None) -> list[Any]:
        """The expected value as a list of items (see :func:`as_items`)."""
        return as_items(self.value(expected), self.separator)


def as_items(value: Any, separator: str | None) -> list[Any]:
    """A value as a list of items.

    Lists, tuples and sets are their items; a string is split on ``separator``
    when one is given (items stripped, empty ones dropped) and is otherwise a
    single item; anything else is a single item.
    """
    if isinstance(value, str):
        if separator is None:
            return [value]
        return [part.strip() for part in value.split(separator) if part.strip()]
    if isinstance(value, (Sequence, Set)) and not isinstance(value, (bytes, bytearray)):
        return list(value)
    return [value]


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
