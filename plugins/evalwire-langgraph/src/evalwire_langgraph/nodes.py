"""Marking LangGraph nodes and graphs as evalwire tasks, and running them on an example.

Nothing here imports LangGraph until a graph is built or run: marking a node
with :func:`node` costs one wrapper function, so an application can keep the
decorator on its nodes without paying for it.

The input state is built from an example's input as upstream evalwire's
``invoke_node`` built it: the user's query (``input[input_key]``) becomes a
human message in ``message_field``; every other input key is a state field.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

__all__ = [
    "GraphTask",
    "OutputKeyError",
    "Settings",
    "build_subgraph",
    "graph",
    "input_state",
    "invoke_node",
    "node",
    "select_output",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The attribute :func:`node` sets on the function it returns.
MARK = "__evalwire_langgraph__"


@dataclass(frozen=True)
class Settings:
    """How to turn an example into a graph's input and its result into the run's output.

    ``state_class`` is the state schema of a node's one-node graph: a class,
    ``"module:Class"``, or ``"Class"`` (a name in the node's module); when
    ``None`` it is read from the node's first parameter's annotation.
    ``message_field`` is the state field holding the messages (``None`` or
    ``""``: the query is passed as the field ``input_key`` itself);
    ``input_key`` is the example input key holding the user's query;
    ``output_key`` picks one key of the result (else the whole update or
    state is the output); ``configurable`` goes into the graph's
    ``RunnableConfig``.
    """

    state_class: Any = None
    message_field: str | None = "messages"
    input_key: str = "user_query"
    output_key: str | None = None
    configurable: Mapping[str, Any] = field(default_factory=dict)

    def updated(self, table: Mapping[str, Any], source: str) -> Settings:
        """These settings with ``table``'s over them; a bad key or value names ``source``."""
        unknown = sorted(set(table) - set(_TYPES))
        if unknown:
            raise ValueError(
                f"{source}: unknown LangGraph setting(s) {', '.join(unknown)}; "
                f"the settings are {', '.join(_TYPES)}"
            )
        values: dict[str, Any] = {}
        for key, value in table.items():
            types, wanted = _TYPES[key]
            if not isinstance(value, types):
                raise ValueError(
                    f"{source}: LangGraph setting '{key}' must be {wanted}, not {value!r}"
                )
            values[key] = value
        if values.get("message_field") is False:
            values["message_field"] = None
        return replace(self, **values)


_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "state_class": ((str, type), "a class or 'module:Class'"),
    "message_field": ((str, bool, type(None)), "a field name, or false"),
    "input_key": ((str,), "an input key"),
    "output_key": ((str, type(None)), "a key of the output"),
    "configurable": ((Mapping,), "a table"),
}


class OutputKeyError(LookupError):
    """``output_key`` names a key the node's update or the graph's state does not have."""


# -- marking tasks ------------------------------------------------------------------------


@overload
def node(fn: F, /) -> F: ...


@overload
def node(
    *,
    state_class: Any = None,
    message_field: str | None = "messages",
    input_key: str = "user_query",
    output_key: str | None = None,
    configurable: Mapping[str, Any] | None = None,
) -> Callable[[F], F]: ...


def node(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    state_class: Any = None,
    message_field: str | None = "messages",
    input_key: str = "user_query",
    output_key: str | None = None,
    configurable: Mapping[str, Any] | None = None,
) -> Any:
    """Mark a LangGraph node function as an evalwire task: ``@node(state_class=State)``.

    evalwire runs the node in a one-node graph (``START → node → END``) over
    ``state_class`` and the run's output is the node's state update, or its
    ``output_key``. The returned function calls the original one unchanged
    (same signature, sync or async), so it still works as a node of the
    application's own graph; the original is not modified.
    """
    settings = Settings(
        state_class=state_class,
        message_field=message_field or None,
        input_key=input_key,
        output_key=output_key,
        configurable=dict(configurable or {}),
    )

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        marked: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def marked(*args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **kwargs)

        else:

            @functools.wraps(fn)
            def marked(*args: Any, **kwargs: Any) -> Any:
                return fn(*args, **kwargs)

        setattr(marked, MARK, (fn, settings))
        return marked

    return mark(fn) if fn is not None else mark


class GraphTask:
    """A LangGraph graph with the settings evalwire runs it with; see :func:`graph`.

    Awaiting ``task(input)`` runs the graph on one example's input, as
    evalwire does, so the task can be tried by hand.
    """

    def __init__(self, graph: Any, settings: Settings) -> None:
        if not hasattr(graph, "ainvoke") and hasattr(graph, "compile"):
            graph = graph.compile()  # a StateGraph builder
        if not hasattr(graph, "ainvoke"):
            raise TypeError(f"expected a LangGraph graph, not {type(graph).__name__}")
        self.graph = graph
        self.settings = settings

    def __repr__(self) -> str:
        return f"GraphTask({self.graph!r}, {self.settings!r})"

    async def __call__(
        self, input: Mapping[str, Any], config: Mapping[str, Any] | None = None
    ) -> Any:
        state = await self.graph.ainvoke(input_state(input, self.settings), config=config)
        return select_output(state, self.settings.output_key, "the graph's final state")


def graph(
    compiled: Any,
    *,
    message_field: str | None = "messages",
    input_key: str = "user_query",
    output_key: str | None = None,
    configurable: Mapping[str, Any] | None = None,
) -> GraphTask:
    """A compiled graph (or a ``StateGraph``, compiled here) as an evalwire task, with settings.

    ``task = graph(app, output_key="answer")`` in ``task.py``. A compiled
    graph can also be the task itself (``task = app``, or ``task =
    app.ainvoke``); this form names its settings in code.
    """
    return GraphTask(
        compiled,
        Settings(
            message_field=message_field or None,
            input_key=input_key,
            output_key=output_key,
            configurable=dict(configurable or {}),
        ),
    )


# -- input and output -----------------------------------------------------------------------


def human_message(content: Any) -> Any:
    """A ``HumanMessage`` when langchain-core is installed, else a ``{"role": "user"}`` dict."""
    try:
        from langchain_core.messages import HumanMessage
    except ImportError:
        return {"role": "user", "content": content}
    return HumanMessage(content=content)


def input_state(values: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The graph's input state for one example's input.

    ``values[input_key]`` becomes a human message appended to
    ``values[message_field]`` (if any); the other keys are state fields as
    they are. An input without ``input_key`` is taken as the state itself.
    """
    state = dict(values)
    field_name, key = settings.message_field, settings.input_key
    if field_name and key in state:
        query = state.pop(key)
        state[field_name] = [*(state.get(field_name) or ()), human_message(query)]
    return state


def select_output(result: Any, key: str | None, what: str) -> Any:
    """``result`` itself, or its ``key`` (an item, else an attribute)."""
    if key is None:
        return result
    if isinstance(result, Mapping):
        if key in result:
            return result[key]
        has = ", ".join(sorted(map(str, result))) or "nothing"
        raise OutputKeyError(f"output_key '{key}' is not in {what} (it has: {has})")
    if hasattr(result, key):
        return getattr(result, key)
    raise OutputKeyError(f"output_key '{key}' is not in {what} ({type(result).__name__})")


# -- graphs ---------------------------------------------------------------------------------


def build_subgraph(
    nodes: list[tuple[str, Callable[..., Any]]],
    state_cls: type[Any],
    input_cls: type[Any] | None = None,
    *,
    name: str | None = None,
    checkpointer: Any = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A linear graph ``START → nodes[0] → … → nodes[-1] → END`` over ``state_cls``, compiled.

    Upstream evalwire's ``build_subgraph``: ``nodes`` are ``(name, callable)``
    pairs; ``input_cls`` is the graph's input schema; ``name`` names the
    compiled graph (for tracing); ``checkpointer`` is passed to ``compile``.
    """
    from langgraph.graph import END, START, StateGraph

    if not nodes:
        raise ValueError("build_subgraph needs at least one node")
    kwargs: dict[str, Any] = {}
    if input_cls is not None:
        kwargs["input_schema"] = input_cls
    builder = StateGraph(state_cls, **kwargs)
    for node_name, node_fn in nodes:
        builder.add_node(node_name, node_fn)
    names = [n for n, _ in nodes]
    builder.add_edge(START, names[0])
    for a, b in zip(names[:-1], names[1:], strict=True):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    compiled = builder.compile(**({"checkpointer": checkpointer} if checkpointer else {}))
    if name is not None:
        compiled.name = name
    return compiled


async def invoke_node(
    node_fn: Callable[..., Any],
    query: str,
    state_cls: type[Any],
    *,
    message_field: str = "messages",
    config: Any = None,
) -> Any:
    """Call one node directly on a state holding ``query`` as a human message.

    Upstream evalwire's ``invoke_node``, kept for code that calls it: it
    builds ``state_cls(message_field=[HumanMessage(query)])`` and awaits
    ``node_fn(state=state, config=config)``, returning what the node returns.
    (evalwire's adapter runs the node in a one-node graph instead, so reducers
    and config are applied as LangGraph applies them.)
    """
    state = state_cls(**{message_field: [human_message(query)]})
    result = node_fn(state=state, config=config if config is not None else {})
    if inspect.isawaitable(result):
        result = await result
    return result
