"""The ``gates`` plugin: fail the session when a score misses its threshold.

``evalwire run --fail-under accuracy=0.8`` (repeatable) gates every
experiment that has an ``accuracy`` evaluator; ``[experiments.NAME] fail_under
= {accuracy = 0.8}`` in ``evalwire.toml`` gates one experiment (see
:mod:`evalwire.gates` for which wins). Each experiment's gates are checked as
it finishes and the records are kept in ``config.stash["gates"]``, so other
reporters can show them; at the end the plugin prints a table of every gate
to stdout and, when one was missed, says which on stderr and exits 1. Dry
runs are gated too (the table says "dry run").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from evalwire import gates
from evalwire.gates import STASH_KEY, GatePlan, GateResult, format_number
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from evalwire.config import Config, OptionParser
    from evalwire.models import ExperimentResult
    from evalwire.session import Experiment, Session

_PLAN = "gates.plan"  # config.stash key of the session's GatePlan


# -- hooks -------------------------------------------------------------------


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--fail-under",
        dest=gates.FAIL_UNDER,
        multiple=True,
        default=None,
        metavar="EVALUATOR=VALUE",
        help="Fail (exit 1) when an experiment's mean EVALUATOR score is below VALUE (repeatable).",
    )


@hookimpl
def evalwire_configure(config: Config) -> None:
    # Malformed gates stop the session (exit 2) before anything runs.
    config.stash[_PLAN] = gates.plan(config)


@hookimpl
def evalwire_session_start(session: Session) -> None:
    config = session.config
    records: list[GateResult] = []
    config.stash[STASH_KEY] = records
    plan = config.stash.get(_PLAN)
    if isinstance(plan, GatePlan) and plan:
        records.extend(gates.unmatched(plan, session.specs, selected=config.names))


@hookimpl
def evalwire_experiment_finish(experiment: Experiment, result: ExperimentResult) -> None:
    config = experiment.config
    plan = config.stash.get(_PLAN)
    records = config.stash.get(STASH_KEY)
    if not isinstance(plan, GatePlan) or not plan or not isinstance(records, list):
        return
    try:
        checked = gates.check(plan, experiment.spec, result)
    except Exception as exc:  # a bug here must not stop the other experiments
        _stderr(f"evalwire: the gates plugin failed ({type(exc).__name__}: {exc})")
        return
    if checked:
        # A global gate thought missing at the start turned out to be met here
        # (an evaluator that names its evaluations differently from its file).
        found = {r.evaluator for r in checked}
        records[:] = [r for r in records if not (r.experiment is None and r.evaluator in found)]
        records.extend(checked)


@hookimpl(trylast=True)  # after the console's summary, which this table follows
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    config = session.config
    records = config.stash.get(STASH_KEY)
    if not records:
        return None
    ordered = sorted(records, key=_order(results))
    if config.getoption("print_summary") is not False:
        _stdout(render_table(ordered, dry_run=config.dry_run_size is not None))
    missed = [r for r in ordered if not r.passed]
    if not missed:
        return None
    _stderr(
        "\n".join(
            f"evalwire: gate missed: {r.experiment or '(no experiment)'} "
            f"{r.evaluator}: {r.describe()}"
            for r in missed
        )
    )
    return 1


# -- the table ---------------------------------------------------------------


def render_table(records: list[GateResult], *, dry_run: bool = False) -> str:
    """A plain-text table of every gate: experiment, evaluator, threshold,
    measured value and verdict (with the reason when it did not pass)."""
    ok, bad = _marks(sys.stdout)
    header = ("experiment", "evaluator", "threshold", "measured", "verdict")
    rows = [
        (
            r.experiment or "(none)",
            r.evaluator,
            r.threshold_text,
            format_number(r.measured, near=r.threshold),
            f"{ok if r.passed else bad} {r.verdict}" + (f": {r.reason}" if r.reason else ""),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    passed = sum(1 for r in records if r.passed)
    title = f"gates{' (dry run)' if dry_run else ''}: {passed} of {len(records)} passed"
    lines = ["", title]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _order(results: list[ExperimentResult]) -> Callable[[GateResult], tuple[int, str]]:
    """Records in the order experiments are listed; gates no experiment has, last."""
    position = {r.name: i for i, r in enumerate(results)}

    def key(record: GateResult) -> tuple[int, str]:
        if record.experiment is None:
            return len(position), record.evaluator
        return position.get(record.experiment, len(position)), ""

    return key


def _marks(stream: object) -> tuple[str, str]:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "+", "x"
    return "✓", "✗"


def _stdout(text: str) -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except Exception:
        pass


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except Exception:
        pass
