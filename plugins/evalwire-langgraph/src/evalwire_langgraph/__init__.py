"""evalwire-langgraph: run LangGraph graphs and nodes as evalwire tasks.

Installed, it registers the ``langgraph`` task adapter (``evalwire_langgraph.plugin``)
in evalwire's plugin group; ``task.py`` then may export a compiled graph or a
node function. :func:`node` and :func:`graph` attach settings in code;
:func:`build_subgraph` and :func:`invoke_node` are upstream evalwire's helpers.

Importing this package does not import LangGraph.
"""

from __future__ import annotations

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
