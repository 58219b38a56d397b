"""The ``console`` reporter: progress while experiments run, a summary table at the end.

On a terminal each running experiment gets a live progress bar (rich draws
it from its own refresh thread); elsewhere (CI logs, pipes) it prints a line
when an experiment starts, one every few seconds while it runs, and one when
it ends. ``-q`` keeps only the summary table and the errors; the Python API's
``print_summary=False`` silences everything.

``evalwire_run_complete`` may be called many thousands of times a second, so
it only notes the first few distinct errors and, at most every
:data:`_LIVE_INTERVAL` seconds, copies the counters the core already keeps
(``result.completed``, ``result.task_errors``) to the display. ``rich`` is
imported only once something is drawn, so ``evalwire --help`` stays fast.

This module is the live part; the summary at the end is drawn by
:mod:`evalwire.builtin._console_summary`, imported once a session starts.
"""

from __future__ import annotations

import atexit
import math
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from evalwire.builtin._errors import DistinctErrors
from evalwire.builtin._format import count, duration, error_counts
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from evalwire.config import Config
    from evalwire.models import ExperimentResult, Run
    from evalwire.session import Experiment, Session

NAME = "console"
_LIVE_INTERVAL = 0.05  # seconds between progress-bar updates (rich redraws at 10 Hz)
_LINE_INTERVAL = 5.0  # seconds between progress lines when not on a terminal
_MAX_ERRORS = 3  # distinct error messages kept per experiment for the summary
_MAX_WIDTH = 1000  # columns a summary table may take off a terminal


# -- hooks -------------------------------------------------------------------


@hookimpl
def evalwire_session_start(session: Session) -> None:
    config = session.config
    old = config.stash.pop(NAME, None)
    if isinstance(old, _Reporter):  # a previous session on this config was interrupted
        old.close()
    try:
        config.stash[NAME] = _Reporter(config, session.started_at or time.time())
    except Exception as exc:  # never let the display stop a session
        _internal_error(exc)


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    reporter = experiment.config.stash.get(NAME)
    if isinstance(reporter, _Reporter):
        reporter.guard(reporter.experiment_start, experiment)


@hookimpl
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    tracker: _Tracker | None = experiment.stash.get(NAME)
    if tracker is None:
        return
    try:
        tracker.errors.add_run(run, _error_label)
        now = time.monotonic()
        if now >= tracker.next_at:
            tracker.reporter.tick(tracker, now)
    except Exception as exc:
        tracker.reporter.failed(exc)


@hookimpl
def evalwire_experiment_finish(experiment: Experiment, result: ExperimentResult) -> None:
    reporter = experiment.config.stash.get(NAME)
    if isinstance(reporter, _Reporter):
        reporter.guard(reporter.experiment_finish, experiment, result)


@hookimpl
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> None:
    reporter = session.config.stash.pop(NAME, None)
    if isinstance(reporter, _Reporter):
        reporter.guard(reporter.session_finish, session, results)
        reporter.close()


# -- state -------------------------------------------------------------------


@dataclass(eq=False)
class _Tracker:
    """One running experiment, as the reporter sees it (kept in ``experiment.stash``)."""

    reporter: _Reporter
    name: str
    result: ExperimentResult
    started: float  # time.monotonic() at experiment start
    next_at: float = math.inf  # when the next progress update or line is due
    errors: DistinctErrors = field(default_factory=lambda: DistinctErrors(_MAX_ERRORS))
    task_id: Any = None  # the rich progress task, on a terminal


class _Reporter:
    """The console reporter for one session (kept in ``config.stash["console"]``)."""

    def __init__(self, config: Config, started_at: float) -> None:
        from evalwire.builtin._console_summary import Glyphs

        self.verbosity = config.verbosity
        self.silent = config.getoption("print_summary") is False
        self.quiet = self.silent or config.verbosity < 0
        self.dry_run = config.dry_run_size is not None
        self.repetitions = config.repetitions
        self.started_at = started_at
        self.trackers: dict[str, _Tracker] = {}
        self.broken = False
        self.console: Any = None  # rich Console on stdout, once needed
        self.progress: Any = None  # rich Progress, on a terminal
        self.glyphs = Glyphs.for_stream(sys.stdout)
        self.tty = _isatty(sys.stdout)
        self.live = not self.quiet and self.tty
        if self.live:
            self.console = _rich_console(sys.stdout)
            self.live = bool(self.console.is_interactive)  # not TERM=dumb, TTY_INTERACTIVE=0
        if self.live:
            self.progress = _rich_progress(self.console)
            self.progress.start()
            # An interrupted session never reaches session_finish: give the cursor back.
            atexit.register(self.close)

    # -- experiments -----------------------------------------------------------

    def experiment_start(self, experiment: Experiment) -> None:
        if self.silent:
            return
        result = experiment.result
        tracker = _Tracker(self, experiment.name, result, time.monotonic())
        self.trackers[result.id] = tracker
        experiment.stash[NAME] = tracker
        if self.quiet or result.status == "error":
            return  # nothing to show until it ends
        if self.live:
            from rich.markup import escape

            tracker.task_id = self.progress.add_task(
                escape(tracker.name), total=result.total, errors=""
            )
            tracker.next_at = tracker.started + _LIVE_INTERVAL
        else:
            self.line(f"{tracker.name}: {self._plan(result)}")
            tracker.next_at = tracker.started + _LINE_INTERVAL

    def tick(self, tracker: _Tracker, now: float) -> None:
        """Show how far an experiment got (called at most every interval)."""
        result = tracker.result
        if self.live:
            errors = result.task_errors + result.evaluation_errors
            self.progress.update(
                tracker.task_id,
                completed=result.completed,
                errors=f"[red]{count(errors, 'error')}" if errors else "",
            )
            tracker.next_at = now + _LIVE_INTERVAL
        else:
            self.line(f"{tracker.name}: {_progress_text(result, now - tracker.started)}")
            tracker.next_at = now + _LINE_INTERVAL

    def experiment_finish(self, experiment: Experiment, result: ExperimentResult) -> None:
        tracker = experiment.stash.pop(NAME, None)
        if tracker is None or self.quiet:
            return
        tracker.next_at = math.inf
        text = f"{tracker.name}: {_outcome_text(result)}"
        if self.live:
            from rich.text import Text

            from evalwire.builtin._console_summary import STATUS_STYLE

            if tracker.task_id is not None:
                self.progress.remove_task(tracker.task_id)
            mark = self.glyphs.ok if result.status == "passed" else self.glyphs.bad
            line = Text(f"{mark} ", style=STATUS_STYLE.get(result.status, ""))
            line.append(text)
            self.progress.console.print(line, highlight=False)
        else:
            self.line(text)

    def _plan(self, result: ExperimentResult) -> str:
        total = result.total
        if total is None:
            what = "running (dataset size unknown)"
        elif self.repetitions > 1:
            examples = total // self.repetitions
            what = f"running {total} runs ({examples} examples x {self.repetitions} repetitions)"
        else:
            what = f"running {total} example{'s' if total != 1 else ''}"
        return f"dry run, {what}" if self.dry_run else what

    # -- the summary -----------------------------------------------------------

    def session_finish(self, session: Session, results: list[ExperimentResult]) -> None:
        from evalwire.builtin._console_summary import details, print_summary

        self.stop()
        if self.silent or not results:
            return
        # Off a terminal rich assumes 80 columns; a CI log is better unwrapped.
        console = self.console or _rich_console(sys.stdout, None if self.tty else _MAX_WIDTH)
        print_summary(
            console,
            results,
            getattr(session, "specs", ()),
            started_at=self.started_at,
            glyphs=self.glyphs,
            styled=self.tty,
            dry_run=self.dry_run,
        )
        errors = {experiment_id: t.errors for experiment_id, t in self.trackers.items()}
        lines = details(results, errors, verbose=self.verbosity > 0)
        if lines:
            sys.stderr.write("".join(f"{line}\n" for line in lines))
            sys.stderr.flush()

    # -- plumbing --------------------------------------------------------------

    def line(self, text: str) -> None:
        """One plain progress line on stdout (off a terminal)."""
        out = sys.stdout
        out.write(f"{text}\n")
        out.flush()

    def guard(self, method: Any, *args: Any) -> None:
        """Call ``method``; a reporter bug is reported once, never raised."""
        try:
            method(*args)
        except Exception as exc:
            self.failed(exc)

    def failed(self, exc: Exception) -> None:
        """Report a bug in this reporter once, then stay out of the way."""
        if not self.broken:
            self.broken = True
            self.silent = self.quiet = True
            for tracker in self.trackers.values():
                tracker.next_at = math.inf
            self.stop()
            _internal_error(exc)

    def stop(self) -> None:
        """Stop drawing progress bars (the display stays on screen)."""
        progress, self.progress = self.progress, None
        if progress is not None:
            try:
                progress.stop()
            except Exception:
                pass

    def close(self) -> None:
        self.stop()
        atexit.unregister(self.close)


# -- formatting --------------------------------------------------------------


def _error_label(evaluator: str | None, error: str) -> str:
    return f"task: {error}" if evaluator is None else f"evaluator '{evaluator}': {error}"


def _progress_text(result: ExperimentResult, elapsed: float) -> str:
    done, total = result.completed, result.total
    parts = [f"{done}/{total} runs" if total is not None else f"{done} runs"]
    errors = result.task_errors + result.evaluation_errors
    if errors:
        parts.append(count(errors, "error"))
    rate = done / elapsed if elapsed > 0 else 0.0
    if rate > 0:
        parts.append(f"{_rate(rate)} runs/s")
        if total is not None and total > done:
            parts.append(f"about {duration((total - done) / rate)} left")
    return ", ".join(parts)


def _outcome_text(result: ExperimentResult) -> str:
    if result.status == "error":  # the whole message comes under the summary table
        return f"error: {result.error.splitlines()[0]}" if result.error else "error"
    total = f"/{result.total}" if result.total is not None else ""
    parts = [f"{result.completed}{total} runs", *error_counts(result)]
    return f"{result.status}, {', '.join(parts)} in {duration(result.duration)}"


def _rate(rate: float) -> str:
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _internal_error(exc: Exception) -> None:
    try:
        sys.stderr.write(
            f"evalwire: the console reporter failed ({type(exc).__name__}: {exc}); "
            "the experiments go on without it\n"
        )
    except Exception:
        pass


def _rich_console(stream: TextIO, width: int | None = None) -> Any:
    from rich.console import Console

    return Console(file=stream, width=width, highlight=False)


def _rich_progress(console: Any) -> Any:
    """A rich Progress showing name, bar, done/total, errors, rate and time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{_rate(speed)} runs/s" if speed else "", style="progress.data.speed")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[errors]}"),
        RateColumn(),
        TimeRemainingColumn(),
        console=console,
        refresh_per_second=10,
    )
