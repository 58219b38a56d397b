"""The ``langgraph`` task adapter: LangGraph graphs and nodes as evalwire tasks.

``task.py`` may hand evalwire

* a compiled graph (``task = app``, ``task = app.ainvoke``, or
  ``task = evalwire_langgraph.graph(app, output_key=...)``): the example
  becomes the input state, the run's output is the final state (or its
  ``output_key``);
* a node function marked with :func:`evalwire_langgraph.node`, or any
  function when LangGraph settings are given for the experiment: it runs in a
  one-node graph over its state class, and the run's output is the node's
  state update (or its ``output_key``).

Settings (``state_class``, ``message_field``, ``input_key``, ``output_key``,
``configurable``) come from the decorator or :func:`~evalwire_langgraph.graph`,
then ``params = {"langgraph": {...}}`` in ``task.py`` (or
``[experiments.NAME.params.langgraph]``), then ``[experiments.NAME.langgraph]``
in ``evalwire.toml``; later ones win.

The adapter is asked before the built-in ``callables`` one (which is
``trylast``) and declines (returns ``None``) anything else. It recognises
LangGraph objects by their classes' modules, so a plain function never makes
it import LangGraph.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire import Example, ExperimentSpec, hookimpl
from evalwire.config import Config
from evalwire.errors import AdaptError

# evalwire_langgraph.nodes is imported by the functions that use it: evalwire
# loads this plugin for every command, `evalwire --help` included.

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from evalwire_langgraph.nodes import Settings

SECTION = "langgraph"


@hookimpl
def evalwire_adapt_task(task: Any, spec: ExperimentSpec, config: Config) -> Any:
    """An async ``(example) -> output`` for a LangGraph task, else ``None``."""
    found = _recognise(task)
    tables = _tables(spec, config)
    if found is None:
        if not tables or not callable(task):
            return None
        from evalwire_langgraph.nodes import Settings

        found = ("node", task, Settings())  # settings alone say it is a node
    kind, target, settings = found
    for source, table in tables:
        try:
            settings = settings.updated(table, source)
        except ValueError as exc:
            raise AdaptError(f"experiment '{spec.name}': {exc}") from None
    if kind == "graph":
        return _graph_task(target, settings, spec)
    return _node_task(target, settings, spec)


# -- what the task is ------------------------------------------------------------------------


def _recognise(task: Any) -> tuple[str, Any, Settings] | None:
    """("graph" | "node", the graph or node function, its settings), or ``None``."""
    from evalwire_langgraph.nodes import MARK, GraphTask, Settings

    if isinstance(task, GraphTask):
        return "graph", task.graph, task.settings
    marked = getattr(task, MARK, None)
    if isinstance(marked, tuple) and len(marked) == 2 and isinstance(marked[1], Settings):
        return "node", marked[0], marked[1]
    if inspect.ismethod(task) and task.__name__ in ("ainvoke", "invoke"):
        task = task.__self__  # ``task = app.ainvoke``
    if _from_langgraph(type(task)):
        if hasattr(task, "ainvoke") and _is_pregel(task):
            return "graph", task, Settings()
        if hasattr(task, "compile") and _is_state_graph(task):
            return "graph", task.compile(), Settings()
    return None


def _from_langgraph(cls: type) -> bool:
    # Only a LangGraph object has a LangGraph class: LangGraph is already
    # imported when this is true, so the isinstance checks below cost nothing.
    return any(getattr(k, "__module__", "").partition(".")[0] == "langgraph" for k in cls.__mro__)


def _is_pregel(task: Any) -> bool:
    from langgraph.pregel import Pregel

    return isinstance(task, Pregel)


def _is_state_graph(task: Any) -> bool:
    from langgraph.graph import StateGraph

    return isinstance(task, StateGraph)


def _tables(spec: ExperimentSpec, config: Config) -> list[tuple[str, Mapping[str, Any]]]:
    """The experiment's LangGraph settings tables, weakest first, with where they came from."""
    tables = []
    params = spec.params.get(SECTION) if isinstance(spec.params, Mapping) else None
    if params is not None:
        if not isinstance(params, Mapping):
            raise AdaptError(
                f"experiment '{spec.name}': params['{SECTION}'] must be a table of "
                f"LangGraph settings, not {params!r}"
            )
        tables.append((f"params['{SECTION}'] of experiment '{spec.name}'", params))
    table = config.experiment_settings(spec.name).get(SECTION)
    if table is not None:
        if not isinstance(table, Mapping):
            raise AdaptError(
                f"[experiments.{spec.name}.{SECTION}] must be a table of LangGraph "
                f"settings, not {table!r}"
            )
        tables.append((f"[experiments.{spec.name}.{SECTION}]", table))
    return tables


# -- running it -------------------------------------------------------------------------------


def _run_config(settings: Settings, spec: ExperimentSpec, example: Example) -> RunnableConfig:
    return {
        "configurable": dict(settings.configurable),
        "run_name": spec.name,
        "metadata": {"evalwire_experiment": spec.name, "evalwire_example_id": example.id},
    }


def _graph_task(graph: Any, settings: Settings, spec: ExperimentSpec) -> Any:
    from evalwire_langgraph.nodes import input_state, select_output

    if settings.state_class is not None:
        raise AdaptError(
            f"experiment '{spec.name}': state_class is a setting for node tasks; "
            "a compiled graph has its own state schema"
        )

    async def run_graph(example: Example) -> Any:
        state = await graph.ainvoke(
            input_state(example.input, settings), config=_run_config(settings, spec, example)
        )
        return select_output(state, settings.output_key, "the graph's final state")

    return run_graph


def _node_task(fn: Callable[..., Any], settings: Settings, spec: ExperimentSpec) -> Any:
    from evalwire_langgraph.nodes import build_subgraph, input_state, select_output

    state_class, namespace = _state_class(fn, settings, spec)
    name = _node_name(fn)
    try:
        with _module_present(state_class, namespace):
            graph = build_subgraph([(name, fn)], state_class, name=spec.name)
    except Exception as exc:
        raise AdaptError(
            f"experiment '{spec.name}': cannot build a graph of node "
            f"'{name}' over {state_class.__name__}: {type(exc).__name__}: {exc}"
        ) from exc

    async def run_node(example: Example) -> Any:
        update: Any = None
        async for chunk in graph.astream(
            input_state(example.input, settings),
            config=_run_config(settings, spec, example),
            stream_mode="updates",
        ):
            if isinstance(chunk, Mapping) and name in chunk:
                update = chunk[name]
        return select_output(update, settings.output_key, f"the update of node '{name}'")

    return run_node


def _node_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", "") or ""
    return name if name.isidentifier() and not name.startswith("__") else "node"


# -- the state class ------------------------------------------------------------------------


def _state_class(
    fn: Callable[..., Any], settings: Settings, spec: ExperimentSpec
) -> tuple[type[Any], dict[str, Any] | None]:
    """The node's state class, and the namespace of the module defining it if that is gone."""
    given = settings.state_class
    where = f"experiment '{spec.name}'"
    globals_ = getattr(inspect.unwrap(fn), "__globals__", {})
    if given is None:
        cls = _annotated_state(fn)
        if cls is None:
            raise AdaptError(
                f"{where}: a LangGraph node task needs its state class: annotate the "
                "node's first parameter (def node(state: State)), or set state_class "
                "(evalwire_langgraph.node(state_class=State), or state_class = "
                '"module:Class" in the experiment\'s LangGraph settings)'
            )
    elif isinstance(given, type):
        cls = given
    elif ":" in given:
        cls, module_globals = _import_class(given, spec)
        if module_globals is not None:
            return cls, module_globals
    else:
        cls = globals_.get(given)
        if not isinstance(cls, type):
            raise AdaptError(
                f"{where}: state_class '{given}' is not a class in the node's module "
                f"{globals_.get('__name__', '?')}; name it as 'module:Class'"
            )
    namespace = globals_ if globals_.get("__name__") == cls.__module__ else None
    return cls, namespace


def _annotated_state(fn: Callable[..., Any]) -> type[Any] | None:
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        return None
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return None
    hint = hints.get(params[0].name)
    return hint if isinstance(hint, type) else None


def _import_class(reference: str, spec: ExperimentSpec) -> tuple[type[Any], dict[str, Any] | None]:
    """``"module:Class"``: from an importable module, else from a file in the experiment folder."""
    module_name, _, attr = reference.partition(":")
    where = f"experiment '{spec.name}'"
    namespace: dict[str, Any] | None = None
    try:
        module: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        local = _local_module(module_name, spec)
        if local is None or exc.name != module_name.partition(".")[0]:
            raise AdaptError(
                f"{where}: state_class '{reference}': cannot import {module_name}: {exc}"
            ) from None
        module, namespace = local, vars(local)
    except Exception as exc:
        raise AdaptError(
            f"{where}: state_class '{reference}': {module_name} failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    if not isinstance(obj, type):
        raise AdaptError(f"{where}: state_class '{reference}' is not a class")
    return obj, namespace


def _local_module(module_name: str, spec: ExperimentSpec) -> types.ModuleType | None:
    """``module_name`` loaded from a file in the experiment folder, leaving no trace in sys.modules.

    The ``dirs`` discoverer keeps experiment modules out of ``sys.modules``;
    so does this, under a private name per folder, as it does.
    """
    if spec.path is None:
        return None
    folder = Path(spec.path)
    path = folder.joinpath(*module_name.split(".")).with_suffix(".py")
    if not path.is_file():
        return None
    import hashlib

    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    private = f"_evalwire_langgraph_{digest}_{module_name.replace('.', '_')}"
    loader_spec = importlib.util.spec_from_file_location(private, path)
    if loader_spec is None or loader_spec.loader is None:  # pragma: no cover
        return None
    module = importlib.util.module_from_spec(loader_spec)
    saved_path, saved_bytecode = list(sys.path), sys.dont_write_bytecode
    sys.path.insert(0, str(folder))
    sys.dont_write_bytecode = True
    sys.modules[private] = module  # dataclasses look their module up while it runs
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        raise AdaptError(
            f"experiment '{spec.name}': {path} failed to import: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        sys.modules.pop(private, None)
        sys.path[:] = saved_path
        sys.dont_write_bytecode = saved_bytecode
    return module


@contextmanager
def _module_present(cls: type[Any], namespace: Mapping[str, Any] | None) -> Iterator[None]:
    """Make the module that defined ``cls`` findable while LangGraph reads its annotations.

    LangGraph resolves the state class's annotations through
    ``sys.modules[cls.__module__]``; a class from ``task.py`` (which evalwire
    imports and then drops from ``sys.modules``) written with ``from
    __future__ import annotations`` would otherwise not resolve.
    """
    name = cls.__module__
    if namespace is None or name in sys.modules:
        yield
        return
    stand_in = types.ModuleType(name)
    stand_in.__dict__.update(namespace)
    sys.modules[name] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
