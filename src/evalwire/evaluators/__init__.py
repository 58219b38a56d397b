"""Built-in evaluator factories.

Each ``make_*_evaluator`` factory returns a plain function (async only for an
LLM judge on an async model, or a composite of async evaluators) whose
parameters are named from ``output``, ``expected``, ``input``, ``metadata``
and ``example``, because evalwire binds evaluator arguments by name. Each
returns an :class:`~evalwire.models.Evaluation` named after the evaluator
(``exact_match``, ``top_k``, ...), with a score in [0, 1], a label where one is
natural, an explanation of any failure, and ``error`` set — never a silent
zero — when the example's expected value is missing or unreadable.

The expected value is read from ``expected[expected_key]`` (default
``"expected_output"``) as given; ``separator=`` and ``parse=`` opt in to
reading text as a list or a literal. See ``docs/evaluators.md``.

:data:`BUILTIN_EVALUATORS` maps each factory's short name, as configuration
files spell it, to the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalwire.evaluators.composition import (
    make_all_pass_evaluator,
    make_any_pass_evaluator,
    make_weighted_evaluator,
)
from evalwire.evaluators.llm_judge import make_llm_judge_evaluator
from evalwire.evaluators.numeric import make_numeric_tolerance_evaluator
from evalwire.evaluators.ranking import make_top_k_evaluator
from evalwire.evaluators.similarity import make_levenshtein_evaluator, make_token_f1_evaluator
from evalwire.evaluators.structured import make_json_match_evaluator, make_schema_evaluator
from evalwire.evaluators.text import (
    make_contains_evaluator,
    make_exact_match_evaluator,
    make_membership_evaluator,
    make_regex_evaluator,
)

__all__ = [
    "BUILTIN_EVALUATORS",
    "make_all_pass_evaluator",
    "make_any_pass_evaluator",
    "make_contains_evaluator",
    "make_exact_match_evaluator",
    "make_json_match_evaluator",
    "make_levenshtein_evaluator",
    "make_llm_judge_evaluator",
    "make_membership_evaluator",
    "make_numeric_tolerance_evaluator",
    "make_regex_evaluator",
    "make_schema_evaluator",
    "make_token_f1_evaluator",
    "make_top_k_evaluator",
    "make_weighted_evaluator",
]

#: Short name (the factory's name without ``make_`` and ``_evaluator``) → factory.
BUILTIN_EVALUATORS: dict[str, Callable[..., Any]] = {
    "top_k": make_top_k_evaluator,
    "membership": make_membership_evaluator,
    "exact_match": make_exact_match_evaluator,
    "contains": make_contains_evaluator,
    "regex": make_regex_evaluator,
    "json_match": make_json_match_evaluator,
    "schema": make_schema_evaluator,
    "numeric_tolerance": make_numeric_tolerance_evaluator,
    "weighted": make_weighted_evaluator,
    "all_pass": make_all_pass_evaluator,
    "any_pass": make_any_pass_evaluator,
    "llm_judge": make_llm_judge_evaluator,
    "token_f1": make_token_f1_evaluator,
    "levenshtein": make_levenshtein_evaluator,
}
