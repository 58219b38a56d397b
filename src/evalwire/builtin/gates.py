"""The ``gates`` plugin: fail the session when a score misses its threshold.

``evalwire run --fail-under accuracy=0.8`` (repeatable) gates every
experiment that has an ``accuracy`` evaluator; ``[experiments.NAME] fail_under
= {accuracy = 0.8}`` in ``evalwire.toml`` gates one experiment (see
:mod:`evalwire.gates` for which wins). Each experiment's gates are checked as
it finishes and the records are kept in ``config.stash["gates"]``, so other
reporters can show them; at the end the plugin prints a table of every gate
to stdout and, when one was missed, says which on stderr and exits 1. Dry
runs are gated too (the table says "dry run").

``--max-regression accuracy=0.02`` (repeatable; ``max_regression = {...}`` in
the same tables) fails an experiment whose mean dropped by more than 0.02
below its baseline, a record of the embedded store: ``--baseline last`` (the
default: the experiment's most recent finished record) or ``--baseline ID``.
Record ids are looked up when the session is configured (an unknown id is a
usage error, exit 2); ``last`` when the session starts, so a record of this
session is never its own baseline. No baseline fails the gate as missing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evalwire.gating.names import BASELINE, FAIL_UNDER, LAST, MAX_REGRESSION, MINUS, STASH_KEY
from evalwire.plugins import hookimpl

# The gating logic (evalwire.gates) is imported by the hooks that use it, not
# here: this plugin loads for every command, `evalwire --help` included.

if TYPE_CHECKING:
    from evalwire.config import Config, OptionParser
    from evalwire.gates import GatePlan, GateResult
    from evalwire.models import ExperimentResult
    from evalwire.session import Experiment, Session
    from evalwire.store.baseline import Baseline

_PLAN = "gates.plan"  # config.stash key of the session's GatePlan
_BASELINES = "gates.baselines"  # config.stash key of the session's _Baselines


@dataclass
class _Baselines:
    """Where baselines are read, the records named by id, and each experiment's choice."""

    path: Path | None
    records: dict[str, Baseline] = field(default_factory=dict)
    chosen: dict[str, Baseline | str] = field(default_factory=dict)


# -- hooks -------------------------------------------------------------------


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--fail-under",
        dest=FAIL_UNDER,
        multiple=True,
        default=None,
        metavar="EVALUATOR=VALUE",
        help="Fail (exit 1) when an experiment's mean EVALUATOR score is below VALUE (repeatable).",
    )
    parser.addoption(
        "--max-regression",
        dest=MAX_REGRESSION,
        multiple=True,
        default=None,
        metavar="EVALUATOR=DELTA",
        help="Fail (exit 1) when an experiment's mean EVALUATOR score is more than DELTA "
        "below its baseline's (repeatable; see --baseline).",
    )
    parser.addoption(
        "--baseline",
        dest=BASELINE,
        multiple=True,
        default=None,
        metavar="last|ID",
        help="What --max-regression compares with: 'last' (the default), each experiment's "
        "latest finished record in the store, or the recorded experiment ID (repeatable).",
    )


@hookimpl
def evalwire_configure(config: Config) -> None:
    from evalwire import gates

    # Malformed gates, and baselines the store does not hold, stop the session
    # (exit 2) before anything runs.
    plan = gates.plan(config)
    config.stash[_PLAN] = plan
    if plan.has_regressions:
        config.stash[_BASELINES] = _find_records(config, plan)


@hookimpl
def evalwire_session_start(session: Session) -> None:
    from evalwire import gates
    from evalwire.gates import GatePlan

    config = session.config
    records: list[GateResult] = []
    config.stash[STASH_KEY] = records
    plan = config.stash.get(_PLAN)
    if isinstance(plan, GatePlan) and plan:
        records.extend(gates.unmatched(plan, session.specs, selected=config.names))
        baselines = config.stash.get(_BASELINES)
        if isinstance(baselines, _Baselines):
            _choose(baselines, plan, [s.name for s in session.specs], session.started_at)


@hookimpl
def evalwire_experiment_finish(experiment: Experiment, result: ExperimentResult) -> None:
    from evalwire import gates
    from evalwire.gates import GatePlan

    config = experiment.config
    plan = config.stash.get(_PLAN)
    records = config.stash.get(STASH_KEY)
    if not isinstance(plan, GatePlan) or not plan or not isinstance(records, list):
        return
    baselines = config.stash.get(_BASELINES)
    baseline = baselines.chosen.get(result.name) if isinstance(baselines, _Baselines) else None
    try:
        checked = gates.check(plan, experiment.spec, result, baseline)
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


# -- baselines -----------------------------------------------------------------


def _find_records(config: Config, plan: GatePlan) -> _Baselines:
    """The store baselines are read from, and the records given by id, looked up."""
    from evalwire.errors import UsageError
    from evalwire.store import baseline
    from evalwire.store.db import store_location

    path = store_location(config, reading=True)
    found = _Baselines(path)
    ids = plan.baseline_ids()
    if not ids or path is None:
        return found
    with baseline.reading(path) as conn:
        if conn is None:
            raise UsageError(
                f"baseline '{ids[0]}': there is no store at {path} to find it in "
                "(give the store with --store PATH)"
            )
        for ref in ids:
            found.records[ref] = baseline.by_id(conn, ref, where=f"the store {path}")
    return found


def _choose(found: _Baselines, plan: GatePlan, names: list[str], started_at: float) -> None:
    """Each gated experiment's baseline (or why it has none), before any of them runs."""
    from evalwire import gates
    from evalwire.store import baseline

    gated = [name for name in names if plan.regressions_for(name)]
    wanting_last = [name for name in gated if LAST in plan.baselines_for(name)]
    where = f"the store {found.path}"
    last: dict[str, Baseline] = {}
    if wanting_last and found.path is not None:
        try:
            with baseline.reading(found.path) as conn:
                if conn is None:
                    where = f"{found.path} (there is no store yet)"
                else:
                    last = baseline.last(conn, wanting_last, before=started_at)
        except Exception as exc:  # a store gone bad since configure: every such gate says so
            where = f"the store {found.path}, which cannot be read ({exc})"
    for name in gated:
        found.chosen[name] = gates.choose_baseline(
            plan.baselines_for(name), name, found.records, last.get(name), where
        )


# -- the table ---------------------------------------------------------------


def render_table(records: list[GateResult], *, dry_run: bool = False) -> str:
    """A plain-text table of every gate: experiment, evaluator, threshold,
    measured value and verdict (with the reason when it did not pass).

    A ``kind`` column (``fail_under``, ``max_regression``) is shown when some
    gate is a regression gate.
    """
    from evalwire.gates import format_number

    ok, bad = _marks(sys.stdout)
    minus = MINUS if _encodable(MINUS, sys.stdout) else "-"
    kinds = any(r.kind != FAIL_UNDER for r in records)
    kind = ("kind",) if kinds else ()
    header = ("experiment", "evaluator", *kind, "threshold", "measured", "verdict")
    rows = [
        (
            r.experiment or "(none)",
            r.evaluator,
            *((r.kind,) if kinds else ()),
            r.threshold_text.replace(MINUS, minus),
            format_number(r.measured, near=r.bound),
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
    return ("✓", "✗") if _encodable("✓✗", stream) else ("+", "x")


def _encodable(text: str, stream: object) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


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
