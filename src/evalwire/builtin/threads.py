"""The ``threads`` executor (the default): event-loop threads on this machine.

Each experiment running at once gets a worker thread with a persistent event
loop; on it, ``task_concurrency`` units are in flight, pulled lazily from the
dataset. The machinery lives in :mod:`evalwire.builtin._loops`, imported when
an executor is made, so loading this plugin (``evalwire --help``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from evalwire.builtin._loops import ThreadsExecutor
    from evalwire.config import Config

NAME = "threads"


@hookimpl(trylast=True)
def evalwire_make_executor(config: Config) -> ThreadsExecutor | None:
    if config.executor != NAME:
        return None
    from evalwire.builtin._loops import ThreadsExecutor

    return ThreadsExecutor(threads=max(config.task_concurrency, 4))
