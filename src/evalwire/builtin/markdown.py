"""The ``markdown`` reporter: ``--markdown PATH`` writes a summary for a CI job page.

Point it at ``$GITHUB_STEP_SUMMARY`` (or any file a CI system shows) to get,
in GitHub-flavoured Markdown: a table of experiments × evaluators (mean
score, errors, runs, duration, status), the gates table when the ``gates``
plugin checked any (from ``config.stash["gates"]``), and what failed, with a
few distinct error messages per experiment.

The file is written once, when the session ends, atomically (see
:mod:`evalwire.builtin._files`); while runs complete it only keeps a few
error messages (see :mod:`evalwire.builtin._errors`). The table reads like the
console's (see :mod:`evalwire.builtin._format`).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from evalwire.builtin._errors import DistinctErrors, ErrorReport, clip
from evalwire.builtin._files import atomic_file, write_report
from evalwire.builtin._format import (
    count,
    duration,
    error_counts,
    evaluator_names,
    score,
    status_counts,
)
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from evalwire.config import OptionParser
    from evalwire.gates import GateResult
    from evalwire.models import ExperimentResult, ExperimentSpec, Run
    from evalwire.session import Experiment, Session

NAME = "markdown"
OPTION = "markdown_path"
MAX_ERRORS = 5  # distinct error messages listed per experiment
_MAX_MESSAGE = 500  # characters of one error message shown
OK, BAD, DASH = "✓", "✗", "—"


# -- hooks -------------------------------------------------------------------


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--markdown",
        dest=OPTION,
        default=None,
        metavar="PATH",
        help="Write a Markdown summary to PATH (e.g. $GITHUB_STEP_SUMMARY).",
    )


@hookimpl
def evalwire_session_start(session: Session) -> None:
    ErrorReport.start(session, NAME, OPTION, lambda: DistinctErrors(MAX_ERRORS))


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    ErrorReport.follow(experiment, NAME)


@hookimpl
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    errors: DistinctErrors | None = experiment.stash.get(NAME)
    if errors is not None:
        errors.add_run(run, _error_label)


@hookimpl
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    config = session.config
    report = config.stash.pop(NAME, None)
    if not isinstance(report, ErrorReport):
        return None

    def write(path: Path) -> None:
        text = render(
            results,
            specs=getattr(session, "specs", ()),
            gates=config.stash.get("gates") or [],
            errors={experiment_id: e.messages for experiment_id, e in report.errors.items()},
            elapsed=time.time() - report.started_at,
            dry_run=config.dry_run_size is not None,
        )
        write_text(path, text)

    return write_report(config, OPTION, "the Markdown summary", write)


# -- the document ------------------------------------------------------------


def render(
    results: list[ExperimentResult],
    *,
    specs: Iterable[ExperimentSpec] = (),
    gates: list[GateResult] | None = None,
    errors: dict[str, dict[str, str]] | None = None,
    elapsed: float = 0.0,
    dry_run: bool = False,
) -> str:
    """The Markdown summary of a session."""
    gates = gates or []
    errors = errors or {}
    lines = [f"## evalwire results{' (dry run)' if dry_run else ''}", ""]
    lines += [_totals(results, elapsed), ""]
    if results:
        lines += _results_table(results, evaluator_names(specs, results))
        lines.append("")
    if gates:
        passed = sum(1 for g in gates if g.passed)
        lines += [f"### Gates: {passed} of {len(gates)} passed", ""]
        lines += _gates_table(gates, results)
        lines.append("")
    failures = _failures(results, gates, errors)
    if failures:
        lines += ["### Failures", "", *failures, ""]
    if dry_run:
        lines += ["_Dry run: a sample of each dataset; nothing was recorded._", ""]
    return "\n".join(lines)


def _totals(results: list[ExperimentResult], elapsed: float) -> str:
    parts = [f"{number} {status}" for status, number in status_counts(results)]
    experiments = count(len(results), "experiment")
    return f"{experiments}: {', '.join(parts) or 'none'} in {duration(elapsed)}"


def _results_table(results: list[ExperimentResult], evaluators: list[str]) -> list[str]:
    header = ["experiment", "status", "runs", "task errors", *evaluators, "duration"]
    align = ["---", "---", "---:", "---:", *("---:" for _ in evaluators), "---:"]
    rows = [_row(header), _row(align, escape=False)]
    for result in results:
        total = f"/{result.total}" if result.total is not None else ""
        rows.append(
            _row(
                [
                    result.name,
                    f"{OK if result.status == 'passed' else BAD} {result.status}",
                    f"{result.completed}{total}",
                    str(result.task_errors),
                    *(score(result.scores.get(name), DASH) for name in evaluators),
                    duration(result.duration),
                ]
            )
        )
    return rows


def _gates_table(gates: list[GateResult], results: list[ExperimentResult]) -> list[str]:
    from evalwire.gates import format_number

    position = {r.name: i for i, r in enumerate(results)}
    ordered = sorted(
        gates,
        key=lambda g: position.get(g.experiment, len(position)) if g.experiment else len(position),
    )
    rows = [
        _row(["experiment", "evaluator", "threshold", "measured", "verdict"]),
        _row(["---", "---", "---:", "---:", "---"], escape=False),
    ]
    for gate in ordered:
        verdict = f"{OK if gate.passed else BAD} {gate.verdict}"
        if gate.reason:
            verdict += f": {gate.reason}"
        rows.append(
            _row(
                [
                    gate.experiment or "(none)",
                    gate.evaluator,
                    gate.threshold_text,
                    DASH
                    if gate.measured is None
                    else format_number(gate.measured, near=gate.bound),
                    verdict,
                ]
            )
        )
    return rows


def _failures(
    results: list[ExperimentResult],
    gates: list[GateResult],
    errors: dict[str, dict[str, str]],
) -> list[str]:
    lines: list[str] = []
    missed: dict[str | None, list[GateResult]] = {}
    for gate in gates:
        if not gate.passed:
            missed.setdefault(gate.experiment, []).append(gate)
    for result in results:
        gates_missed = missed.get(result.name, [])
        if result.status == "passed" and not gates_missed:
            continue
        if result.status == "error":
            message = result.error or "the experiment could not run"
            lines.append(f"- **{_escape(result.name)}**: could not run")
            lines += _block(message)
            continue
        why = error_counts(result)
        if gates_missed:
            why.append(count(len(gates_missed), "gate missed", "gates missed"))
        lines.append(f"- **{_escape(result.name)}**: {', '.join(why) or result.status}")
        if result.error:
            lines += _block(result.error)
        for gate in gates_missed:
            lines.append(f"  - gate {_code(gate.evaluator)}: {_escape(gate.describe())}")
        for message, example_id in errors.get(result.id, {}).items():
            lines.append(f"  - {_code(message)} (example {_code(example_id)})")
    names = {result.name for result in results}
    for experiment, unmatched in missed.items():
        if experiment is None or experiment not in names:
            for gate in unmatched:
                lines.append(f"- gate {_code(gate.evaluator)}: {_escape(gate.describe())}")
    return lines


# -- formatting --------------------------------------------------------------


def _row(cells: list[str], *, escape: bool = True) -> str:
    return "| " + " | ".join(_cell(c) if escape else c for c in cells) + " |"


def _cell(text: str) -> str:
    return _escape(" ".join(text.split())).replace("|", "\\|")


# Intraword underscores and a ">" inside a line are plain text in GitHub's
# Markdown; escaping them would only make the raw file harder to read.
_SPECIAL = re.compile(r"([\\`*\[\]<|])")


def _escape(text: str) -> str:
    """Text shown as is: the characters that would start markup escaped."""
    return _SPECIAL.sub(r"\\\1", text)


def _code(text: str) -> str:
    """An inline code span holding ``text`` on one line, whatever backticks it has."""
    text = " ".join(text.split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _block(text: str) -> list[str]:
    """A fenced code block under a list item."""
    text = _clip(text)
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return [f"  {fence}", *(f"  {line}" for line in text.splitlines()), f"  {fence}"]


# Control characters (ANSI colours, NULs) an error message may carry.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def _clip(message: str) -> str:
    """An error message fit to show: control characters replaced, long ones cut."""
    return clip(_CONTROL.sub("\ufffd", message), _MAX_MESSAGE)


def _error_label(evaluator: str | None, error: str) -> str:
    if evaluator is None:
        return f"task: {_clip(error)}"
    return f"evaluator {evaluator}: {_clip(error)}"


# -- the file ----------------------------------------------------------------


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, creating missing folders."""
    with atomic_file(path) as fh:
        fh.write(text)
