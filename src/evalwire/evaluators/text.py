"""Evaluators that compare an output with expected text: exact match, membership,
containment and regular expressions.

Values are compared as given; when either side is a string the two are
compared by their string forms, so an output ``"4"`` matches an expected ``4``
or ``"4"`` (see :mod:`evalwire.evaluators._compare`). Expected strings are never
evaluated as Python unless ``parse="literal"`` asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Set
from typing import Any, Literal

from evalwire.evaluators._compare import as_text, loose_equal, make_normalizer
from evalwire.evaluators._evaluation import (
    MATCH_LABELS,
    evaluator,
    graded,
    no_output,
    show,
    verdict,
)
from evalwire.evaluators._expected import (
    DEFAULT_EXPECTED_KEY,
    ExpectedReader,
    ExpectedValueError,
    Parse,
)
from evalwire.models import Evaluation

__all__ = [
    "make_contains_evaluator",
    "make_exact_match_evaluator",
    "make_membership_evaluator",
    "make_regex_evaluator",
]

Evaluator = Callable[..., Evaluation]


def make_exact_match_evaluator(
    case_sensitive: bool = True,
    strip_whitespace: bool = True,
    normalize_whitespace: bool = False,
    *,
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
    parse: Parse | None = None,
) -> Evaluator:
    """An evaluator that passes when the output equals the expected value.

    Args:
        case_sensitive: compare text case-sensitively (``False`` casefolds both sides).
        strip_whitespace: ignore leading and trailing whitespace (models often
            end answers with a newline).
        normalize_whitespace: also treat every run of whitespace as one space.
        expected_key: the key of ``expected`` holding the answer; ``None``
            compares against the whole ``expected`` dict.
        parse: ``"literal"`` or ``"json"`` to decode an expected string first.

    Returns ``exact_match(output, expected) -> Evaluation`` scoring 1.0
    (``"match"``) or 0.0 (``"no_match"``). An output of ``None`` matches only
    an expected ``None``.
    """
    normalize = make_normalizer(
        case_sensitive=case_sensitive,
        strip_whitespace=strip_whitespace,
        normalize_whitespace=normalize_whitespace,
    )
    reader = ExpectedReader.of(expected_key, parse=parse)

    @evaluator("exact_match")
    def exact_match(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        want = reader.value(expected)
        if output is None and want is not None:
            return no_output("exact_match", "no_match")
        return verdict(
            "exact_match",
            loose_equal(output, want, normalize),
            _difference(output, want, normalize),
        )

    return exact_match


def make_membership_evaluator(
    case_sensitive: bool = True,
    strip_whitespace: bool = True,
    normalize_whitespace: bool = False,
    *,
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
    separator: str | None = None,
    parse: Parse | None = None,
) -> Evaluator:
    """An evaluator that passes when the output is one of the expected values.

    Meant for classification and routing, where the expected value lists the
    acceptable labels: a list, a delimited string with ``separator=``, a
    literal string with ``parse="literal"``, or a single value.

    Returns ``membership(output, expected) -> Evaluation`` scoring 1.0
    (``"match"``) or 0.0 (``"no_match"``).
    """
    normalize = make_normalizer(
        case_sensitive=case_sensitive,
        strip_whitespace=strip_whitespace,
        normalize_whitespace=normalize_whitespace,
    )
    reader = ExpectedReader.of(expected_key, parse=parse, separator=separator)

    @evaluator("membership")
    def membership(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        accepted = reader.items(expected)
        if output is None:
            return no_output("membership", "no_match")
        if not accepted:
            return verdict("membership", False, f"expected {expected_key!r} lists no values")
        return verdict(
            "membership",
            any(loose_equal(output, item, normalize) for item in accepted),
            f"output {show(output)} is not one of {show(accepted, 200)}",
        )

    return membership


def make_contains_evaluator(
    case_sensitive: bool = True,
    *,
    require: Literal["all", "any"] = "all",
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
    separator: str | None = None,
    parse: Parse | None = None,
) -> Evaluator:
    """An evaluator that checks the output contains the expected text.

    A text output must contain each expected item as a substring; a list
    output must hold each expected item as an element. The expected value may
    be one item (any type: ``4`` is looked for as ``"4"``) or several (a list,
    or a delimited string with ``separator=``).

    With ``require="all"`` (default) the score is the fraction of items found
    and the label is ``"match"`` only when every one is; with
    ``require="any"`` one found item is a full match.
    """
    if require not in ("all", "any"):
        raise ValueError(f"require must be 'all' or 'any', not {require!r}")
    normalize = make_normalizer(case_sensitive=case_sensitive)
    reader = ExpectedReader.of(expected_key, parse=parse, separator=separator)

    @evaluator("contains")
    def contains(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        wanted = reader.items(expected)
        if output is None:
            return no_output("contains", "no_match")
        if not wanted:
            raise ExpectedValueError(f"expected {expected_key!r} lists nothing to look for")
        missing = [item for item in wanted if not _contained(item, output, normalize)]
        if require == "any":
            return verdict(
                "contains",
                len(missing) < len(wanted),
                f"none of {show(wanted, 200)} found in output {show(output)}",
            )
        if not missing:
            return verdict("contains", True)
        return graded(
            "contains",
            (len(wanted) - len(missing)) / len(wanted),
            f"missing from output {show(output)}: {', '.join(show(m) for m in missing)}",
            label=MATCH_LABELS[1],
        )

    return contains


def make_regex_evaluator(
    pattern: str | re.Pattern[str] | None = None,
    *,
    flags: int = 0,
    full_match: bool = False,
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
) -> Evaluator:
    """An evaluator that passes when the output matches a regular expression.

    ``pattern`` is compiled once, here: an invalid pattern raises
    :class:`ValueError` now rather than on every example. Without a
    ``pattern``, each example's expected value (at ``expected_key``) is the
    pattern, as upstream evalwire did.

    The pattern is searched for anywhere in the output's text
    (:func:`re.search`); ``full_match=True`` requires the whole text to match.
    """
    compiled = None if pattern is None else _compile(pattern, flags, ValueError)
    reader = ExpectedReader.of(expected_key)

    @evaluator("regex")
    def regex(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        rx = compiled
        if rx is None:
            rx = _compile(reader.value(expected), flags, ExpectedValueError)
        if output is None:
            return no_output("regex", "no_match")
        text = as_text(output)
        found = rx.fullmatch(text) if full_match else rx.search(text)
        how = "fully match" if full_match else "match"
        return verdict(
            "regex",
            found is not None,
            f"output {show(output)} does not {how} /{rx.pattern}/",
        )

    return regex


def _compile(pattern: Any, flags: int, error: type[Exception]) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        if flags:
            return re.compile(pattern.pattern, pattern.flags | flags)
        return pattern
    if isinstance(pattern, (int, float)) and not isinstance(pattern, bool):
        pattern = str(pattern)
    if not isinstance(pattern, str):
        raise error(f"a regular expression must be a string, not {type(pattern).__name__}")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise error(f"invalid regular expression {pattern!r}: {exc}") from None


def _contained(item: Any, output: Any, normalize: Callable[[str], str]) -> bool:
    if isinstance(output, (list, tuple, Set)):
        return any(loose_equal(element, item, normalize) for element in output)
    return normalize(as_text(item)) in normalize(as_text(output))


def _difference(output: Any, want: Any, normalize: Callable[[str], str]) -> str:
    text = f"output {show(output)} != expected {show(want)}"
    if isinstance(output, str) and isinstance(want, str):
        # Located in the normalized text: a difference the options ignore is no help.
        left, right = normalize(output), normalize(want)
        at = next(
            (i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b),
            min(len(left), len(right)),
        )
        text += f" (first difference at character {at})"
    return text
