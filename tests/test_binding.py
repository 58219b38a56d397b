"""Parameters of tasks and evaluators are bound by name, as Phoenix binds them."""

from __future__ import annotations

from keyword import iskeyword
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalwire.binding import EVALUATOR_PARAMETERS, SOURCES, TASK_PARAMETERS, bind
from evalwire.errors import AdaptError
from evalwire.models import Example

EXAMPLE = Example("e1", {"q": "what?"}, {"a": "that"}, {"tag": "x"})
PARAMS = {"model": "small"}


def call(fn: Any, allowed: tuple[str, ...], sole: str, output: Any = None) -> Any:
    binding = bind(fn, allowed, sole, "fn")
    args, kwargs = binding.arguments(EXAMPLE, output, PARAMS)
    return fn(*args, **kwargs)


def test_a_task_with_one_unnamed_parameter_gets_the_input() -> None:
    assert call(lambda x: x, TASK_PARAMETERS, "input") == {"q": "what?"}


def test_an_evaluator_with_one_unnamed_parameter_gets_the_output() -> None:
    assert call(lambda y: y, EVALUATOR_PARAMETERS, "output", output=42) == 42


def test_reference_is_an_alias_of_expected() -> None:
    def ev(output: Any, reference: dict[str, Any]) -> Any:
        return reference

    assert call(ev, EVALUATOR_PARAMETERS, "output") == {"a": "that"}


def test_a_task_receives_params_and_the_whole_example() -> None:
    def task(example: Example, params: dict[str, Any]) -> Any:
        return example.id, params["model"]

    assert call(task, TASK_PARAMETERS, "input") == ("e1", "small")


def test_parameters_with_defaults_that_evalwire_does_not_know_are_left_alone() -> None:
    def task(input: dict[str, Any], temperature: float = 0.5) -> Any:
        return temperature

    assert call(task, TASK_PARAMETERS, "input") == 0.5


def test_an_unknown_required_parameter_is_an_error_naming_it() -> None:
    def task(input: dict[str, Any], client: object) -> None: ...

    with pytest.raises(AdaptError, match="'client'"):
        bind(task, TASK_PARAMETERS, "input", "task of experiment 'x'")


def test_positional_only_parameters_are_passed_by_position() -> None:
    def ev(output: Any, expected: Any, /) -> Any:
        return output, expected

    assert call(ev, EVALUATOR_PARAMETERS, "output", output=1) == (1, {"a": "that"})


def test_a_callable_object_is_bound_by_its_call_signature() -> None:
    class Scorer:
        def __call__(self, output: Any, metadata: dict[str, Any]) -> Any:
            return metadata["tag"]

    assert call(Scorer(), EVALUATOR_PARAMETERS, "output") == "x"


@given(st.sets(st.sampled_from(EVALUATOR_PARAMETERS), min_size=2))
def test_any_set_of_known_names_binds_each_to_its_source(names: set[str]) -> None:
    ordered = sorted(names)
    namespace: dict[str, Any] = {}
    exec(
        f"def fn({', '.join(ordered)}):\n    return dict({', '.join(f'{n}={n}' for n in ordered)})",
        namespace,
    )
    got = call(namespace["fn"], EVALUATOR_PARAMETERS, "output", output="OUT")
    assert got == {n: SOURCES[n](EXAMPLE, "OUT", PARAMS) for n in ordered}


@given(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(lambda n: not iskeyword(n)))
def test_a_single_parameter_of_any_name_binds(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def fn({name}):\n    return {name}", namespace)
    expected = SOURCES[name](EXAMPLE, None, PARAMS) if name in TASK_PARAMETERS else EXAMPLE.input
    assert call(namespace["fn"], TASK_PARAMETERS, "input") == expected
