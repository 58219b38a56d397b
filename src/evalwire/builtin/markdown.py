"""The ``markdown`` reporter: ``--markdown PATH`` writes a summary for a CI job page.

Point it at ``$GITHUB_STEP_SUMMARY`` (or any file a CI system shows) to get,
in GitHub-flavoured Markdown: a table of experiments × evaluators (mean
score, errors, runs, duration, status), the gates table when the ``gates``
plugin checked any (from ``config.stash["gates"]``), and what failed, with a
few distinct error messages per experiment.

The file is written once, when the session ends, atomically (a temporary
file in the same folder, then a rename). ``evalwire_run_complete`` only looks
for errors, so it stays cheap at many thousands of runs a second.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from collections.abc import Iterable

    from evalwire.config import Config, OptionParser
    from evalwire.gates import GateResult
    from evalwire.models import ExperimentResult, ExperimentSpec, Run, ScoreSummary
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
    config = session.config
    config.stash.pop(NAME, None)
    if config.getoption(OPTION) is not None:  # the path is checked when it is written
        config.stash[NAME] = _Report(session.started_at or time.time())


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    report = experiment.config.stash.get(NAME)
    if isinstance(report, _Report):
        experiment.stash[NAME] = report.errors.setdefault(experiment.id, {})


@hookimpl
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    errors: dict[str, str] | None = experiment.stash.get(NAME)
    if errors is None or len(errors) >= MAX_ERRORS:
        return
    if run.error is not None:
        errors.setdefault(f"task: {_clip(str(run.error))}", run.example.id)
    for evaluation in run.evaluations:
        if evaluation.error is not None and len(errors) < MAX_ERRORS:
            message = f"evaluator {evaluation.name}: {_clip(str(evaluation.error))}"
            errors.setdefault(message, run.example.id)


@hookimpl
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    config = session.config
    report = config.stash.pop(NAME, None)
    if not isinstance(report, _Report):
        return None
    path: Any = config.getoption(OPTION)
    try:
        path = _target(config)
        assert path is not None
        text = render(
            results,
            specs=getattr(session, "specs", ()),
            gates=config.stash.get("gates") or [],
            errors=report.errors,
            elapsed=time.time() - report.started_at,
            dry_run=config.dry_run_size is not None,
        )
        write_text(path, text)
    except Exception as exc:  # never raise from a reporter: say so, and fail the session
        return _cannot_write(path, exc)
    return None


@dataclass(eq=False)
class _Report:
    started_at: float
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> message -> example


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
        lines += _results_table(results, _evaluator_names(specs, results))
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
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    order = ("passed", "failed", "error")
    parts = [f"{counts[s]} {s}" for s in sorted(counts, key=lambda s: _status_order(s, order))]
    noun = "experiment" if len(results) == 1 else "experiments"
    return f"{len(results)} {noun}: {', '.join(parts) or 'none'} in {_duration(elapsed)}"


def _status_order(status: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(status) if status in order else len(order), status)


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
                    *(_score(result.scores.get(name)) for name in evaluators),
                    _duration(result.duration),
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
                    else format_number(gate.measured, near=gate.threshold),
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
        why = _plural(result.task_errors, "task error") + _plural(
            result.evaluation_errors, "evaluation error"
        )
        if gates_missed:
            why.append(_plural(len(gates_missed), "gate missed", "gates missed")[0])
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


def _evaluator_names(specs: Iterable[ExperimentSpec], results: list[ExperimentResult]) -> list[str]:
    """Every evaluator across experiments: declared order first, then any others."""
    names: dict[str, None] = {}
    for spec in specs:
        for name in spec.evaluators or ():
            names.setdefault(str(name), None)
    for result in results:
        for name in sorted(result.scores):
            names.setdefault(name, None)
    return list(names)


# -- formatting --------------------------------------------------------------


def _score(summary: ScoreSummary | None) -> str:
    if summary is None:
        return DASH
    text = f"{summary.mean:.2f}" if summary.count else DASH
    if summary.errors:
        text += f" ({_plural(summary.errors, 'error')[0]})"
    return text


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


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def _plural(count: int, noun: str, nouns: str | None = None) -> list[str]:
    if not count:
        return []
    return [f"{count} {noun if count == 1 else (nouns or noun + 's')}"]


# Control characters (ANSI colours, NULs) an error message may carry.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def _clip(message: str) -> str:
    """An error message fit to show: control characters replaced, long ones cut."""
    message = _CONTROL.sub("\ufffd", message)
    if len(message) <= _MAX_MESSAGE:
        return message
    return message[: _MAX_MESSAGE - 3] + "..."


# -- the file ----------------------------------------------------------------


def _target(config: Config) -> Path | None:
    """The file to write: from the command line relative to the current folder,
    from the config file relative to the project root."""
    given = config.options.get(OPTION)
    if given is not None:
        return Path(os.fspath(given)).expanduser().absolute()
    setting = config.getoption(OPTION)
    if setting is None:
        return None
    return config.resolve(os.fspath(setting)).absolute()


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, creating missing folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _cannot_write(path: Any, exc: BaseException) -> int:
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
    else:
        reason = f"{type(exc).__name__}: {exc}"
    try:
        sys.stderr.write(f"evalwire: cannot write the Markdown summary to {path}: {reason}\n")
    except Exception:
        pass
    return 1
