"""The ``langgraph`` task adapter: compiled graphs and node functions as evalwire tasks.

Nodes here are fakes (no model is called): they answer from the messages
they are given. Experiments are real folders run through ``evalwire.testing``,
in-process and as ``python -m evalwire``; the adapter is found through the
installed distribution's entry point, as a user's evalwire finds it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from evalwire import Dataset, Example, ExperimentSpec, run_experiment
from evalwire.config import build_config
from evalwire.errors import AdaptError
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

import evalwire_langgraph
from evalwire_langgraph import plugin

pytest_plugins = ["evalwire.testing"]


class State(TypedDict, total=False):
    messages: Annotated[list[Any], add_messages]
    answer: str
    style: str


@dataclass
class DataState:
    messages: Annotated[list[Any], add_messages] = field(default_factory=list)
    answer: str = ""


async def shout(state: State) -> dict[str, Any]:
    """A fake model: answers the last message in capitals."""
    query = state["messages"][-1].content
    answer = query.upper() if state.get("style") != "quiet" else query.lower()
    return {"answer": answer, "messages": [AIMessage(answer)]}


def compiled_shout() -> Any:
    builder = StateGraph(State)
    builder.add_node("shout", shout)
    builder.add_edge(START, "shout")
    builder.add_edge("shout", END)
    return builder.compile()


def adapt(task: Any, *, params: dict[str, Any] | None = None, tmp: Path | None = None) -> Any:
    """The adapter's answer for ``task`` in an experiment named ``demo``."""
    spec = ExperimentSpec(name="demo", task=task, params=params or {})
    config = build_config(cwd=tmp or Path.cwd())
    return plugin.evalwire_adapt_task(task=task, spec=spec, config=config)


def call(adapted: Any, **input: Any) -> Any:
    return asyncio.run(adapted(Example("ex1", input)))


# -- compiled graphs ----------------------------------------------------------------------


def test_compiled_graph_returns_its_final_state_for_the_query_as_a_human_message() -> None:
    output = call(adapt(compiled_shout()), user_query="hello")

    assert output["answer"] == "HELLO"
    assert [type(m) for m in output["messages"]] == [HumanMessage, AIMessage]
    assert [m.content for m in output["messages"]] == ["hello", "HELLO"]


def test_compiled_graph_output_key_picks_one_key_of_the_final_state() -> None:
    adapted = adapt(compiled_shout(), params={"langgraph": {"output_key": "answer"}})

    assert call(adapted, user_query="hello") == "HELLO"


def test_other_input_keys_become_state_fields() -> None:
    adapted = adapt(compiled_shout(), params={"langgraph": {"output_key": "answer"}})

    assert call(adapted, user_query="HeLLo", style="quiet") == "hello"


def test_input_key_and_message_field_are_settings() -> None:
    adapted = adapt(
        compiled_shout(),
        params={"langgraph": {"input_key": "question", "output_key": "answer"}},
    )

    assert call(adapted, question="why") == "WHY"


def test_input_without_the_query_key_is_the_state_itself() -> None:
    output = call(adapt(compiled_shout()), messages=[{"role": "user", "content": "as state"}])

    assert output["answer"] == "AS STATE"


def test_graph_ainvoke_the_graph_helper_and_an_uncompiled_builder_are_graph_tasks() -> None:
    builder = StateGraph(State)
    builder.add_node("shout", shout)
    builder.add_edge(START, "shout")
    builder.add_edge("shout", END)

    by_method = call(adapt(compiled_shout().ainvoke), user_query="a")
    by_helper = call(
        adapt(evalwire_langgraph.graph(compiled_shout(), output_key="answer")), user_query="b"
    )
    by_builder = call(adapt(builder), user_query="c")

    assert by_method["answer"] == "A"
    assert by_helper == "B"
    assert by_builder["answer"] == "C"


def test_graph_helper_can_be_awaited_by_hand() -> None:
    task = evalwire_langgraph.graph(compiled_shout(), output_key="answer")

    assert asyncio.run(task({"user_query": "by hand"})) == "BY HAND"


def test_configurable_reaches_the_graph_config() -> None:
    async def styled(state: State, config: RunnableConfig) -> dict[str, Any]:
        return {"answer": f"{config['configurable']['tone']}:{state['messages'][-1].content}"}

    marked = evalwire_langgraph.node(output_key="answer", configurable={"tone": "dry"})(styled)

    assert call(adapt(marked), user_query="hi") == "dry:hi"


# -- node functions ----------------------------------------------------------------------------


def test_decorated_node_runs_in_a_one_node_graph_and_returns_its_state_update() -> None:
    marked = evalwire_langgraph.node(state_class=State)(shout)

    output = call(adapt(marked), user_query="hey")

    # The update the node returned, not the whole state: no HumanMessage in it.
    assert output["answer"] == "HEY"
    assert [m.content for m in output["messages"]] == ["HEY"]


def test_decorated_node_output_key_picks_one_key_of_the_update() -> None:
    marked = evalwire_langgraph.node(state_class=State, output_key="answer")(shout)

    assert call(adapt(marked), user_query="hey") == "HEY"


def test_decorated_node_still_works_as_the_same_function() -> None:
    marked = evalwire_langgraph.node(shout)

    assert marked.__name__ == "shout"
    assert asyncio.run(marked({"messages": [HumanMessage("x")]}))["answer"] == "X"
    assert not hasattr(shout, "__evalwire_langgraph__")  # the original is left alone


def test_node_state_class_defaults_to_the_first_parameters_annotation() -> None:
    def sync_node(state: DataState) -> dict[str, Any]:
        return {"answer": state.messages[-1].content * 2}

    marked = evalwire_langgraph.node(output_key="answer")(sync_node)

    assert call(adapt(marked), user_query="ab") == "abab"


def test_node_state_class_can_be_named_as_module_colon_class_or_a_name_in_its_module() -> None:
    by_path = evalwire_langgraph.node(state_class=f"{__name__}:State", output_key="answer")(
        lambda state: {"answer": state["messages"][-1].content}
    )
    by_name = evalwire_langgraph.node(state_class="DataState", output_key="answer")(
        lambda state: {"answer": state.messages[-1].content}
    )

    assert call(adapt(by_path), user_query="p") == "p"
    assert call(adapt(by_name), user_query="n") == "n"


def test_plain_function_with_langgraph_settings_is_a_node() -> None:
    params = {"langgraph": {"state_class": f"{__name__}:State", "output_key": "answer"}}

    assert call(adapt(shout, params=params), user_query="settings") == "SETTINGS"


def test_config_file_settings_win_over_task_params(tmp_path: Path) -> None:
    (tmp_path / "evalwire.toml").write_text(
        '[experiments.demo.langgraph]\noutput_key = "messages"\n', encoding="utf-8"
    )
    params = {"langgraph": {"output_key": "answer"}}

    output = call(
        adapt(evalwire_langgraph.node(shout), params=params, tmp=tmp_path), user_query="x"
    )

    assert [m.content for m in output] == ["X"]


class Plain(TypedDict, total=False):
    user_query: str
    answer: str


def test_message_field_false_passes_the_query_as_a_state_field() -> None:
    def echo(state: Plain) -> dict[str, Any]:
        return {"answer": state["user_query"] + "!"}

    marked = evalwire_langgraph.node(message_field=None, output_key="answer")(echo)

    assert call(adapt(marked), user_query="raw") == "raw!"


# -- what is not LangGraph, and mistakes ---------------------------------------------------------


def test_plain_functions_are_left_to_the_builtin_adapter() -> None:
    async def task(input: dict[str, Any]) -> str:
        return str(input)

    assert adapt(task) is None
    assert adapt(lambda input: input) is None
    assert adapt(object()) is None


def test_a_plain_task_does_not_import_langgraph() -> None:
    code = (
        "import sys\n"
        "from evalwire import ExperimentSpec\n"
        "from evalwire.config import build_config\n"
        "from evalwire_langgraph import plugin\n"
        "async def task(input): return input\n"
        "spec = ExperimentSpec(name='plain', task=task)\n"
        "assert plugin.evalwire_adapt_task(task=task, spec=spec, config=build_config()) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith(('langgraph', 'langchain'))))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.strip() == "[]"


def test_unknown_setting_is_an_adapt_error_naming_it_and_where_it_was() -> None:
    with pytest.raises(
        AdaptError, match=r"params\['langgraph'\].*unknown LangGraph setting.*outptu_key"
    ):
        adapt(compiled_shout(), params={"langgraph": {"outptu_key": "answer"}})


def test_node_without_a_state_class_is_an_adapt_error_saying_how_to_give_one() -> None:
    marked = evalwire_langgraph.node(lambda state: {})

    with pytest.raises(AdaptError, match="needs its state class.*state_class"):
        adapt(marked)


def test_state_class_for_a_compiled_graph_is_an_adapt_error() -> None:
    with pytest.raises(AdaptError, match="state_class is a setting for node tasks"):
        adapt(compiled_shout(), params={"langgraph": {"state_class": "x:State"}})


# -- experiment folders, end to end --------------------------------------------------------------

STATE_MODULE = """
from __future__ import annotations

from typing import Annotated, TypedDict

from langgraph.graph.message import add_messages


class State(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    answer: str
"""

GRAPH_TASK = (
    STATE_MODULE
    + """

from langgraph.graph import END, START, StateGraph


async def shout(state: State) -> dict:
    return {"answer": state["messages"][-1].content.upper()}


builder = StateGraph(State)
builder.add_node("shout", shout)
builder.add_edge(START, "shout")
builder.add_edge("shout", END)
app = builder.compile()

task = app.ainvoke
params = {"langgraph": {"output_key": "answer"}}
"""
)

NODE_TASK = (
    STATE_MODULE
    + """

import evalwire_langgraph


@evalwire_langgraph.node(output_key="answer")
async def task(state: State) -> dict:
    return {"answer": state["messages"][-1].content[::-1]}
"""
)

EXACT = """
def exact(output, expected):
    return output == expected["answer"]
"""


def write_experiments(project: Any) -> None:
    project.experiment(
        "shouting",
        task=GRAPH_TASK,
        evaluators={"exact": EXACT},
        rows=[
            {"input": {"user_query": "hi"}, "expected": {"answer": "HI"}},
            {"input": {"user_query": "no"}, "expected": {"answer": "nope"}},
        ],
    )
    project.experiment(
        "reversing",
        task=NODE_TASK,
        evaluators={"exact": EXACT},
        rows=[
            {"input": {"user_query": "abc"}, "expected": {"answer": "cba"}},
            {"input": {"user_query": "xy"}, "expected": {"answer": "yx"}},
        ],
    )
    project.experiment(
        "plain",
        task="async def task(input):\n    return input['user_query']\n",
        evaluators={"exact": EXACT},
        rows=[{"input": {"user_query": "same"}, "expected": {"answer": "same"}}],
    )


def test_experiment_folders_run_in_process_with_scores(
    evalwire_project: Any, run_evalwire: Any
) -> None:
    write_experiments(evalwire_project)

    outcome = run_evalwire(evalwire_project, retries=0)

    outcome.assert_passed()
    outcome.assert_score("shouting", "exact", 0.5)
    outcome.assert_score("reversing", "exact", 1.0)
    outcome.assert_score("plain", "exact", 1.0)  # a plain async task, run by `callables`
    assert outcome.outputs("shouting") == ["HI", "NO"]
    assert outcome.outputs("reversing") == ["cba", "yx"]


def test_experiment_folders_run_as_a_subprocess_with_scores(
    evalwire_project: Any, run_evalwire_subprocess: Any
) -> None:
    write_experiments(evalwire_project)

    outcome = run_evalwire_subprocess(evalwire_project, "--retries", "0")

    outcome.assert_passed()
    outcome.assert_score("shouting", "exact", 0.5)
    outcome.assert_score("reversing", "exact", 1.0)
    outcome.assert_score("plain", "exact", 1.0)
    assert "shouting" in outcome.stdout and "reversing" in outcome.stdout


def test_config_file_makes_a_plain_function_a_node_with_a_state_class_from_the_folder(
    evalwire_project: Any, run_evalwire: Any
) -> None:
    evalwire_project.experiment(
        "configured",
        task="""
            def task(state):
                return {"answer": state["messages"][-1].content + "?"}
        """,
        evaluators={"exact": EXACT},
        rows=[{"input": {"user_query": "really"}, "expected": {"answer": "really?"}}],
        files={"_state.py": STATE_MODULE},
    )
    evalwire_project.config(
        """
        [experiments.configured.langgraph]
        state_class = "_state:State"
        output_key = "answer"
        """
    )

    outcome = run_evalwire(evalwire_project, retries=0)

    outcome.assert_passed()
    outcome.assert_score("configured", "exact", 1.0)
    assert not any(  # the experiment's own module, not other libraries' ``x._state``
        name == "_state" or (name.startswith("_evalwire") and name.endswith("_state"))
        for name in sys.modules
    )


def test_missing_output_key_fails_the_run_saying_what_the_update_has(
    evalwire_project: Any, run_evalwire: Any
) -> None:
    evalwire_project.experiment(
        "wrong-key",
        task=NODE_TASK.replace('output_key="answer"', 'output_key="reply"'),
        rows=[{"input": {"user_query": "abc"}}],
    )

    outcome = run_evalwire(evalwire_project, retries=0)

    outcome.assert_exit(1)
    [run] = outcome.runs("wrong-key")
    assert "output_key 'reply' is not in the update of node 'task' (it has: answer)" in (
        run.error or ""
    )


def test_broken_state_class_setting_fails_that_experiment_only(
    evalwire_project: Any, run_evalwire: Any
) -> None:
    write_experiments(evalwire_project)
    evalwire_project.config('[experiments.reversing.langgraph]\nstate_class = "nowhere:State"\n')

    outcome = run_evalwire(evalwire_project, retries=0)

    outcome.assert_exit(1)
    reversing = outcome.result("reversing")
    assert reversing.status == "error"
    assert "state_class 'nowhere:State': cannot import nowhere" in (reversing.error or "")
    assert outcome.result("shouting").status == "passed"


def test_run_experiment_takes_a_compiled_graph_as_the_task() -> None:
    dataset = Dataset(
        "greetings",
        [Example("g1", {"user_query": "hi"}, {"answer": "HI"})],
    )

    ran = run_experiment(
        dataset=dataset,
        task=compiled_shout(),
        evaluators={"exact": lambda output, expected: output["answer"] == expected["answer"]},
        plugin_args=["no:console"],
    )

    assert ran.result is not None and ran.result.mean("exact") == 1.0


def test_a_compiled_graph_can_be_the_task_of_an_experiment_folder(
    evalwire_project: Any, run_evalwire: Any
) -> None:
    evalwire_project.experiment(
        "bare-graph",
        task=GRAPH_TASK.replace("task = app.ainvoke", "task = app"),
        evaluators={"exact": EXACT},
        rows=[{"input": {"user_query": "hi"}, "expected": {"answer": "HI"}}],
    )

    outcome = run_evalwire(evalwire_project, retries=0)

    outcome.assert_passed()


def test_installed_distribution_registers_the_langgraph_plugin(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "evalwire", "plugins", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    infos = {info["name"]: info for info in json.loads(done.stdout)}
    assert infos["langgraph"]["distribution"] == "evalwire-langgraph"
    assert infos["langgraph"]["hooks"] == ["evalwire_adapt_task"]
