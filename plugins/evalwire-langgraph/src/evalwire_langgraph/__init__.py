"""evalwire-langgraph: run LangGraph graphs and nodes as evalwire tasks.

Installed, it registers the ``langgraph`` task adapter (``evalwire_langgraph.plugin``)
in evalwire's plugin group; ``task.py`` then may export a compiled graph or a
node function. :func:`node` and :func:`graph` attach settings in code;
:func:`build_subgraph` and :func:`invoke_node` are upstream evalwire's helpers.

Importing this package does not import LangGraph, nor (until one of these
names is used) :mod:`evalwire_langgraph.nodes`: evalwire imports the package
to load its plugin for every command, ``evalwire --help`` included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalwire_langgraph.nodes import (
        GraphTask,
        OutputKeyError,
        Settings,
        build_subgraph,
        graph,
        input_state,
        invoke_node,
        node,
    )

__all__ = [
    "GraphTask",
    "OutputKeyError",
    "Settings",
    "build_subgraph",
    "graph",
    "input_state",
    "invoke_node",
    "node",
]


def __getattr__(name: str) -> Any:
    # ``nodes`` too: importing the package used to import it, so code may
    # reach it as ``evalwire_langgraph.nodes`` after ``import evalwire_langgraph``.
    if name != "nodes" and name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    nodes = importlib.import_module("evalwire_langgraph.nodes")
    value = nodes if name == "nodes" else getattr(nodes, name)
    globals()[name] = value  # found directly from now on
    return value
