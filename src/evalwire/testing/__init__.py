"""A pytest plugin for evalwire plugin authors: build a project, run evalwire, check scores.

Opt in with ``-p evalwire.testing`` or ``pytest_plugins = ["evalwire.testing"]``;
nothing here is active otherwise. It offers three fixtures::

    EXACT = '''
        def exact(output, expected):
            return output == expected["x"]
    '''

    def test_my_adapter_scores(evalwire_project, run_evalwire):
        evalwire_project.experiment(
            "echo",
            task=MY_TASK,
            evaluators={"exact": EXACT},
            rows=[{"input": {"x": 1}, "expected": {"x": 1}}],
        )
        outcome = run_evalwire(evalwire_project, plugins=[my_plugin], retries=0)
        outcome.assert_passed()
        outcome.assert_score("echo", "exact", 1.0)

``evalwire_project``
    An :class:`EvalwireProject` over ``tmp_path``: experiment folders,
    datasets and ``evalwire.toml``, written from source strings.
``run_evalwire``
    :func:`run_in_process`: a session in this process, with plugin objects
    registered directly; the :class:`Outcome` holds every result and run.
``run_evalwire_subprocess``
    :func:`run_subprocess`: ``python -m evalwire run`` as a user runs it, for
    entry points, options and exit codes; its results come back through
    ``--json``, so the :class:`Outcome` is the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evalwire.testing.outcome import Outcome
from evalwire.testing.project import EvalwireProject
from evalwire.testing.running import TIMEOUT, run_in_process, run_subprocess

__all__ = [
    "TIMEOUT",
    "EvalwireProject",
    "Outcome",
    "evalwire_project",
    "run_evalwire",
    "run_evalwire_subprocess",
    "run_in_process",
    "run_subprocess",
]

# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def evalwire_project(tmp_path: Path) -> EvalwireProject:
    """A throwaway evalwire project in ``tmp_path`` (see :class:`EvalwireProject`)."""
    return EvalwireProject(tmp_path)


@pytest.fixture
def run_evalwire() -> Callable[..., Outcome]:
    """Run evalwire in this process: ``run_evalwire(project, *names, plugins=[...], **settings)``.

    See :func:`run_in_process`; returns an :class:`Outcome`.
    """
    return run_in_process


@pytest.fixture
def run_evalwire_subprocess() -> Callable[..., Outcome]:
    """Run ``python -m evalwire run``: ``run_evalwire_subprocess(project, *cli_args)``.

    See :func:`run_subprocess`; returns an :class:`Outcome`.
    """
    return run_subprocess
