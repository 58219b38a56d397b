"""Graded similarity of free text: token F1 and normalized Levenshtein similarity.

Both score in [0, 1] where 1.0 means the texts are the same (after the
options' normalization). When the expected value holds several acceptable
answers (a list, or a delimited string with ``separator=``) the output is
scored against each and the best score counts, as SQuAD scores answers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from evalwire.evaluators._compare import as_text, make_normalizer
from evalwire.evaluators._evaluation import evaluator, graded, no_output, show
from evalwire.evaluators._expected import (
    DEFAULT_EXPECTED_KEY,
    ExpectedReader,
    ExpectedValueError,
    Parse,
)
from evalwire.models import Evaluation

__all__ = ["levenshtein_distance", "make_levenshtein_evaluator", "make_token_f1_evaluator"]

# Words of any script; punctuation and whitespace only separate them.
_TOKEN = re.compile(r"\w+")


def make_token_f1_evaluator(
    case_sensitive: bool = False,
    *,
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
    separator: str | None = None,
    parse: Parse | None = None,
) -> Callable[..., Evaluation]:
    """An evaluator scoring the word overlap of output and expected text (F1).

    Texts are split into words (runs of letters, digits and ``_`` in any
    script; punctuation is ignored) and compared as bags of words: the score
    is the harmonic mean of precision (the share of output words that are
    expected) and recall (the share of expected words the output has). Two
    texts without words score 1.0; one without words scores 0.0.

    Returns ``token_f1(output, expected) -> Evaluation``, with ``precision``
    and ``recall`` in its metadata.
    """
    normalize = make_normalizer(case_sensitive=case_sensitive)
    reader = ExpectedReader.of(expected_key, parse=parse, separator=separator)

    def tokens(value: Any) -> list[str]:
        return _TOKEN.findall(normalize(as_text(value)))

    @evaluator("token_f1")
    def token_f1(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        answers = _answers(reader, expected)
        if output is None:
            return no_output("token_f1")
        produced = tokens(output)
        best = max(
            (_f1(produced, tokens(answer)) + (answer,) for answer in answers),
            key=lambda scored: scored[0],
        )
        f1, precision, recall, answer = best
        explanation = None
        if f1 < 1.0:
            explanation = (
                f"precision {precision:.2f}, recall {recall:.2f}: "
                f"output {show(output)} vs expected {show(answer)}"
            )
        return graded(
            "token_f1",
            f1,
            explanation,
            metadata={"precision": precision, "recall": recall},
        )

    return token_f1


def make_levenshtein_evaluator(
    case_sensitive: bool = True,
    strip_whitespace: bool = True,
    normalize_whitespace: bool = False,
    *,
    expected_key: str | None = DEFAULT_EXPECTED_KEY,
    separator: str | None = None,
    parse: Parse | None = None,
) -> Callable[..., Evaluation]:
    """An evaluator scoring character-level similarity: 1 - edits / longer length.

    ``edits`` is the Levenshtein distance (insertions, deletions and
    substitutions of single characters). Two empty texts score 1.0. The cost
    grows with the product of the lengths: meant for short answers, not
    documents.

    Returns ``levenshtein(output, expected) -> Evaluation``, with the
    ``distance`` in its metadata.
    """
    normalize = make_normalizer(
        case_sensitive=case_sensitive,
        strip_whitespace=strip_whitespace,
        normalize_whitespace=normalize_whitespace,
    )
    reader = ExpectedReader.of(expected_key, parse=parse, separator=separator)

    @evaluator("levenshtein")
    def levenshtein(output: Any, expected: Mapping[str, Any] | None = None) -> Evaluation:
        answers = _answers(reader, expected)
        if output is None:
            return no_output("levenshtein")
        produced = normalize(as_text(output))
        scored = []
        for answer in answers:
            target = normalize(as_text(answer))
            distance = levenshtein_distance(produced, target)
            longest = max(len(produced), len(target))
            scored.append((1.0 - distance / longest if longest else 1.0, distance, answer))
        similarity, distance, answer = max(scored, key=lambda s: s[0])
        explanation = None
        if distance:
            explanation = (
                f"{distance} edit(s) from expected {show(answer)} to output {show(output)}"
            )
        return graded("levenshtein", similarity, explanation, metadata={"distance": distance})

    return levenshtein


def levenshtein_distance(a: str, b: str) -> int:
    """The number of single-character edits that turn ``a`` into ``b``."""
    # A shared prefix and suffix cost nothing; trimming them first makes the
    # usual case (a nearly right answer) close to linear.
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(
                    previous[j] + 1,  # delete char_a
                    current[j - 1] + 1,  # insert char_b
                    previous[j - 1] + (char_a != char_b),  # substitute
                )
            )
        previous = current
    return previous[-1]


def _answers(reader: ExpectedReader, expected: Mapping[str, Any] | None) -> list[Any]:
    answers = reader.items(expected)
    if not answers:
        raise ExpectedValueError(f"expected {reader.key!r} lists no answers")
    return answers


def _f1(produced: list[str], reference: list[str]) -> tuple[float, float, float]:
    """(f1, precision, recall) of two bags of words."""
    if not produced and not reference:
        return 1.0, 1.0, 1.0
    common = sum((Counter(produced) & Counter(reference)).values())
    if common == 0:
        return 0.0, 0.0, 0.0
    precision = common / len(produced)
    recall = common / len(reference)
    return 2 * precision * recall / (precision + recall), precision, recall
