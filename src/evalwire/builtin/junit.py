"""The ``junit`` reporter: ``--junit PATH`` writes JUnit XML for CI test views.

GitLab, GitHub (test-reporter actions), Jenkins and friends read it. The
document has one ``<testsuite>`` per experiment (named after it) and in it:

* ``experiment``: an ``<error>`` when the experiment could not run;
* ``task``: the task's runs, with a ``<failure message="N of M runs failed">``
  listing up to :data:`MAX_ERRORS` distinct task errors;
* one testcase per evaluator (``classname`` the experiment, ``name`` the
  evaluator) whose properties and ``<system-out>`` give its mean, count,
  errors and gates; a ``<failure>`` when one of its gates was missed or some
  of its evaluations raised.

One evaluator may have a gate of each kind (``fail_under`` and
``max_regression``); each has its own properties, named for its kind
(``gate.fail_under.threshold``, ``gate.max_regression.baseline``,
``gate.max_regression.baseline_id``, ``gate.KIND.verdict``...), and each one
missed adds a ``gate missed: ...`` to the failure's message. The case's
``verdict`` property is the worst of its gates' (``fail``, ``missing``,
``pass``).

Gates no experiment could meet (an evaluator nobody has) go in a last suite
named ``gates``. Gates come from the ``gates`` plugin's records in
``config.stash["gates"]``; without that plugin there are none.

The file is written once, when the session ends, atomically (see
:mod:`evalwire.builtin._files`); while runs complete it only keeps a few
error messages (see :mod:`evalwire.builtin._errors`).
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from evalwire.builtin._errors import DistinctErrors, ErrorReport, clip
from evalwire.builtin._files import atomic_file, write_report
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from pathlib import Path
    from xml.etree.ElementTree import Element

    from evalwire.config import OptionParser
    from evalwire.gates import GateResult
    from evalwire.models import ExperimentResult, Run, ScoreSummary
    from evalwire.session import Experiment, Session

NAME = "junit"
OPTION = "junit_path"
MAX_ERRORS = 10  # distinct error messages listed per testcase
_MAX_MESSAGE = 2000  # characters of one error message kept


# -- hooks -------------------------------------------------------------------


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--junit",
        dest=OPTION,
        default=None,
        metavar="PATH",
        help="Write JUnit XML to PATH (one test suite per experiment, one test per "
        "evaluator) for CI test reports.",
    )


@hookimpl
def evalwire_session_start(session: Session) -> None:
    ErrorReport.start(session, NAME, OPTION, ErrorSamples)


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    ErrorReport.follow(experiment, NAME)


@hookimpl
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    samples: ErrorSamples | None = experiment.stash.get(NAME)
    if samples is not None:
        samples.add_run(run)


@hookimpl
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    config = session.config
    report = config.stash.pop(NAME, None)
    if not isinstance(report, ErrorReport):
        return None
    gates = config.stash.get("gates") or []
    dry_run = config.dry_run_size is not None

    def write(path: Path) -> None:
        write_xml(path, build(session, results, gates, report, dry_run=dry_run))

    return write_report(config, OPTION, "JUnit XML", write)


# -- what runs left behind ---------------------------------------------------


@dataclass(eq=False)
class ErrorSamples:
    """The first :data:`MAX_ERRORS` distinct errors of one experiment, with an example each."""

    task: DistinctErrors = field(default_factory=lambda: DistinctErrors(MAX_ERRORS))
    evaluators: dict[str, DistinctErrors] = field(default_factory=dict)  # by evaluator

    def add_run(self, run: Run) -> None:
        """Keep the run's errors: the task's in ``task``, each evaluator's in its own."""
        if run.error is not None:
            self.task.add(clip(run.error, _MAX_MESSAGE), run.example.id)
        for evaluation in run.evaluations:
            if evaluation.error is not None:
                found = self.evaluators.get(evaluation.name)
                if found is None:
                    found = self.evaluators[evaluation.name] = DistinctErrors(MAX_ERRORS)
                found.add(clip(evaluation.error, _MAX_MESSAGE), run.example.id)


# -- the document ------------------------------------------------------------


def build(
    session: Session,
    results: list[ExperimentResult],
    gates: list[GateResult],
    report: ErrorReport[ErrorSamples],
    *,
    dry_run: bool = False,
) -> Element:
    """The ``<testsuites>`` element for a session."""
    from xml.etree.ElementTree import Element

    specs = {spec.name: spec for spec in getattr(session, "specs", ())}
    root = Element("testsuites", name="evalwire (dry run)" if dry_run else "evalwire")
    for result in results:
        spec = specs.get(result.name)
        declared = [str(n) for n in (spec.evaluators if spec is not None else ())]
        own_gates = [g for g in gates if g.experiment == result.name]
        samples = report.errors.get(result.id) or ErrorSamples()
        root.append(_suite(result, declared, own_gates, samples, dry_run))
    # Gates that matched no experiment of the session: an evaluator nobody has,
    # an experiment table naming no experiment.
    names = {result.name for result in results}
    orphans = [g for g in gates if g.experiment is None or g.experiment not in names]
    if orphans:
        suite = _element("testsuite", name="gates", timestamp=_stamp(time.time()))
        for gate in orphans:
            case = _testcase(suite, gate.experiment or "gates", gate.evaluator)
            _properties(case, **_gates_values([gate]))
            _add(case, "failure", gate.describe(), "gate")
        _count(suite)
        root.append(suite)
    _count(root, time.time() - report.started_at)
    return root


def _suite(
    result: ExperimentResult,
    declared: list[str],
    gates: list[GateResult],
    samples: ErrorSamples,
    dry_run: bool,
) -> Element:
    import socket

    suite = _element(
        "testsuite",
        name=result.name,
        timestamp=_stamp(result.started_at),
        hostname=socket.gethostname(),
    )
    _properties(
        suite,
        experiment_id=result.id,
        experiment_name=result.experiment_name,
        dataset=result.dataset,
        dataset_version=result.dataset_version,
        status=result.status,
        dry_run=str(dry_run).lower(),
    )
    name = result.name
    if result.status == "error":
        case = _testcase(suite, name, "experiment", result.duration)
        error = _add(case, "error", result.error or "the experiment could not run", "error")
        traceback = result.extra.get("traceback")
        if traceback:
            error.text = _xml_text(str(traceback))
        if not result.completed:
            _count(suite, result.duration)
            return suite

    evaluated = result.completed - result.task_errors
    case = _testcase(suite, name, "task", 0.0 if result.status == "error" else result.duration)
    if result.task_errors:
        failure = _add(
            case, "failure", f"{result.task_errors} of {result.completed} runs failed", "task"
        )
        failure.text = _listing(samples.task.messages, result.task_errors)
    total = f"/{result.total}" if result.total is not None else ""
    _system_out(case, f"runs={result.completed}{total} task_errors={result.task_errors}")

    # An evaluator may have a gate of each kind: keep them all.
    by_evaluator: dict[str, list[GateResult]] = {}
    for gate in gates:
        by_evaluator.setdefault(gate.evaluator, []).append(gate)
    names = list(dict.fromkeys([*declared, *sorted(result.scores), *by_evaluator]))
    for evaluator in names:
        summary = result.scores.get(evaluator)
        own = by_evaluator.get(evaluator, [])
        _evaluator_case(suite, name, evaluator, summary, own, evaluated, samples)
    _count(suite, result.duration)
    return suite


def _evaluator_case(
    suite: Element,
    experiment: str,
    evaluator: str,
    summary: ScoreSummary | None,
    gates: list[GateResult],
    evaluated: int,
    samples: ErrorSamples,
) -> None:
    from evalwire.gates import format_number

    case = _testcase(suite, experiment, evaluator)
    mean = summary.mean if summary is not None and summary.count else None
    count = summary.count if summary is not None else 0
    errors = summary.errors if summary is not None else 0
    values: dict[str, Any] = {
        "mean": None if mean is None else repr(mean),
        "count": count,
        "errors": errors,
    }
    if gates:
        values.update(_gates_values(gates))
    _properties(case, **values)
    problems = [f"gate missed: {gate.describe()}" for gate in gates if not gate.passed]
    missed = bool(problems)
    if errors:
        problems.append(f"{errors} of {evaluated} evaluations failed")
    if problems:
        failure = _add(case, "failure", "; ".join(problems), "gate" if missed else "evaluation")
        if errors:
            found = samples.evaluators.get(evaluator)
            failure.text = _listing(found.messages if found else {}, errors)
    # JUnit's schema puts <system-out> after <failure>.
    lines = [f"mean={format_number(mean)} count={count} errors={errors}"]
    lines += [f"{g.kind} threshold={g.threshold_text} verdict={g.verdict}" for g in gates]
    _system_out(case, "\n".join(lines))


def _gates_values(gates: list[GateResult]) -> dict[str, Any]:
    """The properties of an evaluator's gates: the worst verdict, then each gate's own."""
    verdicts = {g.verdict for g in gates}
    worst = next(v for v in ("fail", "missing", "pass") if v in verdicts)
    values: dict[str, Any] = {"verdict": worst}
    for gate in gates:
        prefix = f"gate.{gate.kind}."
        values[prefix + "threshold"] = repr(gate.threshold)
        if gate.baseline is not None:
            values[prefix + "baseline"] = repr(gate.baseline)
            values[prefix + "bound"] = repr(gate.bound)
        values[prefix + "baseline_id"] = gate.baseline_id
        values[prefix + "verdict"] = gate.verdict
        values[prefix + "source"] = gate.source or None
    return values


def _listing(samples: dict[str, str], total: int) -> str:
    lines = [f"{message} (example {example_id})" for message, example_id in samples.items()]
    if total > len(samples):
        lines.append(f"({len(samples)} distinct errors shown of {total})")
    return _xml_text("\n".join(lines))


# -- XML plumbing --------------------------------------------------------------

# Characters XML 1.0 cannot hold at all; an error message may carry them
# (ANSI colours, NULs), and ElementTree would write them as they are.
_ILLEGAL = "[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"


@functools.cache
def _illegal() -> re.Pattern[str]:
    # Compiled when a report is written: a class spanning all of Unicode takes
    # ~6 ms to compile, which every command would pay at plugin load.
    return re.compile(_ILLEGAL)


def _xml_text(text: str) -> str:
    return _illegal().sub("\ufffd", text)


def _element(tag: str, **attrs: Any) -> Element:
    from xml.etree.ElementTree import Element

    return Element(tag, {k: _xml_text(str(v)) for k, v in attrs.items() if v is not None})


def _testcase(parent: Element, classname: str, name: str, seconds: float = 0.0) -> Element:
    case = _element("testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    parent.append(case)
    return case


def _add(case: Element, tag: str, message: str, kind: str) -> Element:
    child = _element(tag, message=clip(message, _MAX_MESSAGE), type=kind)
    case.append(child)
    return child


def _properties(parent: Element, **values: Any) -> None:
    props = _element("properties")
    for name, value in values.items():
        if value is not None:
            props.append(_element("property", name=name, value=value))
    if len(props):
        parent.insert(0, props)


def _system_out(case: Element, text: str) -> None:
    out = _element("system-out")
    out.text = _xml_text(text)
    case.append(out)


def _count(parent: Element, seconds: float | None = None) -> None:
    """Set tests/failures/errors (summed over child suites, or counted over cases)."""
    tests = failures = errors = 0
    for child in parent:
        if child.tag == "testsuite":
            tests += int(child.get("tests", 0))
            failures += int(child.get("failures", 0))
            errors += int(child.get("errors", 0))
        elif child.tag == "testcase":
            tests += 1
            failures += child.find("failure") is not None
            errors += child.find("error") is not None
    parent.set("tests", str(tests))
    parent.set("failures", str(failures))
    parent.set("errors", str(errors))
    if parent.tag == "testsuite":
        parent.set("skipped", "0")
    if seconds is not None:
        parent.set("time", f"{max(0.0, seconds):.3f}")


def _stamp(seconds: float) -> str:
    # JUnit's schema wants an ISO date-time without a zone; it is UTC.
    return datetime.fromtimestamp(seconds or time.time(), timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )


def write_xml(path: Path, root: Element) -> None:
    """Write ``root`` to ``path`` atomically, creating missing folders."""
    from xml.etree.ElementTree import ElementTree, indent

    tree = ElementTree(root)
    indent(tree)
    with atomic_file(path, binary=True) as fh:
        tree.write(fh, encoding="utf-8", xml_declaration=True)
        fh.write(b"\n")
