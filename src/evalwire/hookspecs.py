"""Every hook evalwire calls, grouped by stage.

A plugin is any module or object with functions named after these hooks and
marked with :data:`evalwire.hookimpl`. It may implement any subset, and may
accept any subset of each hook's arguments (pluggy passes them by name).

"First answer wins" hooks stop at the first implementation that returns
something other than ``None``; evalwire's own defaults are registered with
``trylast=True``, so an installed plugin is asked first and can decline (return
``None``) to fall back to the default. All other hooks call every plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from evalwire.config import Config, OptionParser
    from evalwire.executor import Executor
    from evalwire.models import Dataset, ExperimentResult, ExperimentSpec, Resume, Run
    from evalwire.session import Experiment, Session
    from evalwire.tracing import Tracer

hookspec = pluggy.HookspecMarker("evalwire")

# -- set-up ------------------------------------------------------------------


@hookspec
def evalwire_addoption(parser: OptionParser) -> None:
    """Add command-line options to ``evalwire run``.

    Called once, while the command line is being built, before it is parsed.
    Use ``parser.addoption("--my-flag", dest="my_flag", default=..., help=...)``
    (the keyword arguments are click's). Parsed values are read back with
    ``config.getoption("my_flag")``. Returns nothing; every plugin is called.
    """


@hookspec
def evalwire_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``evalwire`` command group.

    Called once when the command line is built. Add commands with
    ``@cli.command()`` or ``cli.add_command(...)``; import heavy modules inside
    the command, not at plugin import, so ``evalwire --help`` stays fast.
    Returns nothing; every plugin is called.
    """


@hookspec
def evalwire_configure(config: Config) -> None:
    """Check and complete the configuration before anything runs.

    Called once per session, after the command line and the config file are
    merged. Raise :class:`evalwire.errors.UsageError` to stop with exit 2 and
    a message. Returns nothing; every plugin is called.
    """


@hookspec
def evalwire_register_evaluators(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Offer evaluator factories that ``evalwire.toml`` can name.

    Called once per session. Call ``register(name, factory)`` for each; the
    config line ``evaluators = ["name", {name = "alias", use = "name", k = 5}]``
    of ``[experiments.NAME]`` then calls ``factory(**options)`` and adds the
    evaluator it returns to that experiment. A name registered twice keeps
    the first registration (plugins are called before the built-ins).
    Returns nothing; every plugin is called.
    """


# -- discoverers -------------------------------------------------------------


@hookspec
def evalwire_discover(config: Config) -> list[ExperimentSpec] | None:
    """Find experiments.

    Called once per session. Returns a list of :class:`ExperimentSpec` (or
    ``None``); the lists of every plugin are joined in call order. When two
    specs share a name, the first one wins. A spec that could not be loaded
    carries ``error`` instead of a task: that experiment fails, the others run.
    """


# -- loaders -----------------------------------------------------------------


@hookspec(firstresult=True)
def evalwire_load_dataset(spec: ExperimentSpec, config: Config) -> Dataset | None:
    """Load the dataset an experiment runs on (``spec.dataset_name``).

    Called once per experiment, in the experiment's own thread. Return a
    :class:`Dataset`, or ``None`` to let the next loader try. Raise
    :class:`evalwire.errors.DatasetError` when the dataset is yours but
    broken or missing. First answer wins.
    """


@hookspec
def evalwire_describe_search(spec: ExperimentSpec, config: Config) -> str | None:
    """Say where you looked for ``spec.dataset_name``, when no loader found it.

    Called only for a dataset no loader answered for; the answers of every
    plugin are joined into the "not found" message, so the user sees every
    place that was searched. Return ``None`` if you have nothing to say.
    """


@hookspec(firstresult=True)
def evalwire_resume(experiment: Experiment, config: Config) -> Resume | None:
    """With ``--resume``: the latest record of this experiment, if it can be continued.

    Called once per experiment, after its dataset is loaded and its task and
    evaluators adapted (so a store can check that neither changed), before
    ``evalwire_experiment_start``. Return a :class:`Resume` to continue that
    record: ``experiment.result.id`` becomes its id and only the missing
    (example, repetition) pairs run. Return ``None`` to start afresh (say why
    on stderr if the user would expect a resume). First answer wins.
    """


# -- task adapters -----------------------------------------------------------


@hookspec(firstresult=True)
def evalwire_adapt_task(task: Any, spec: ExperimentSpec, config: Config) -> Any:
    """Turn whatever ``task.py`` exported into an async callable ``(example) -> output``.

    Called once per experiment. Return ``None`` if you do not handle this kind
    of task. The returned coroutine function receives an :class:`Example` and
    its result is the run's output. First answer wins.
    """


@hookspec(firstresult=True)
def evalwire_adapt_evaluator(
    evaluator: Any, name: str, spec: ExperimentSpec, config: Config
) -> Any:
    """Turn an evaluator into an async callable ``(output, example) -> Evaluation``.

    Called once per evaluator per experiment. Return ``None`` if you do not
    handle this kind of evaluator. The returned coroutine function must return
    an :class:`Evaluation` named ``name``. First answer wins.
    """


# -- executors ---------------------------------------------------------------


@hookspec(firstresult=True)
def evalwire_make_executor(config: Config) -> Executor | None:
    """Create the executor that runs units of work (``config.executor`` names it).

    Called once per session. Return an :class:`evalwire.executor.Executor` when
    ``config.executor`` is your name, else ``None``. First answer wins.
    """


@hookspec(firstresult=True)
def evalwire_make_tracer(experiment: Experiment) -> Tracer | None:
    """A tracer that puts each of this experiment's task calls in a span, or ``None``.

    Called once per experiment, right after ``evalwire_experiment_start``. The
    :class:`evalwire.tracing.Tracer` opens a span around each unit's task; the
    span's trace id lands on the :class:`Run`. Tracing is best effort: the
    tracer must not raise (an implementation that raises is named on stderr
    and the experiment runs without spans). First answer wins.
    """


# -- reporters ---------------------------------------------------------------
# Reporting hooks are called one at a time (the core serializes them), from
# whichever thread runs the experiment. They must not raise: a reporter that
# cannot record says so itself and lets the run go on.


@hookspec
def evalwire_session_start(session: Session) -> None:
    """A session is about to run ``session.specs``. Every plugin is called."""


@hookspec
def evalwire_experiment_start(experiment: Experiment) -> None:
    """An experiment's dataset is loaded and its first unit is about to run.

    ``experiment.result`` is the :class:`ExperimentResult` that fills in as
    runs complete; ``experiment.result.total`` is the number of units when
    known. Every plugin is called.
    """


@hookspec
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    """One unit of work finished (task called, evaluators applied).

    Called as each run completes, in completion order, so a reporter that
    records it makes it durable. Every plugin is called.
    """


@hookspec
def evalwire_experiment_finish(experiment: Experiment, result: ExperimentResult) -> None:
    """An experiment ended (passed, failed, or could not run). Every plugin is called."""


@hookspec
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    """All experiments ended. Every plugin is called.

    A plugin may return a non-zero exit status (a missed gate, a recorder that
    lost runs); the session exits with the highest one returned.
    """
