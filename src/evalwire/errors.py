"""Errors a user can cause, each turned into one readable message at the edge."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalwire.models import ExperimentResult


class EvalwireError(Exception):
    """Base class: the message is meant for the user, as is."""


class UsageError(EvalwireError):
    """Bad option, bad config, missing folder, unknown name: exit status 2."""


class PluginError(UsageError):
    """A plugin failed to import or does not fit the hook specifications."""


class DatasetError(EvalwireError):
    """A dataset is missing or malformed; fails the experiment that needs it."""


class AdaptError(EvalwireError):
    """A task or evaluator cannot be called the way evalwire calls it."""


class ExperimentsFailed(SystemExit):
    """Raised by the Python API after every experiment finished, when any failed.

    It is a :class:`SystemExit` with code 1 (so a script that does not catch it
    exits 1), and it carries every result in ``results``.
    """

    def __init__(self, results: list[ExperimentResult], code: int = 1) -> None:
        super().__init__(code)
        self.results = results
        failed = [r.name for r in results if r.failed]
        self.failed = failed

    def __str__(self) -> str:
        return f"{len(self.failed)} experiment(s) failed: {', '.join(self.failed)}"
