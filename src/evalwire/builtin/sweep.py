"""The ``sweep`` reporter: per swept experiment, arms × evaluators and the pick.

Printed after the session's summary table: one row per arm with each
evaluator's mean ± standard deviation over replicates and the number of
errors, the best arm marked, and a sentence saying what to do about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from evalwire.models import ExperimentResult
    from evalwire.session import Session
    from evalwire.sweeps import SweepSummary


@hookimpl(trylast=True)  # after the console's summary table
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> None:
    if session.config.getoption("print_summary") is False:
        return
    for summary in session.sweep_summaries:
        click.echo(render(summary))


def render(summary: SweepSummary) -> str:
    """The sweep table and conclusion as plain text."""
    best = summary.selection.best if summary.selection else None
    header = ["arm", *summary.evaluators, "replicates", "errors"]
    rows = []
    for arm in summary.arms:
        cells = [("* " if arm.label == best else "  ") + arm.label]
        for name in summary.evaluators:
            if name in arm.means:
                cells.append(f"{arm.means[name]:.3f} ± {arm.stdevs[name]:.3f}")
            else:
                cells.append("—")
        cells += [str(arm.replicates), str(arm.errors)]
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"\nsweep of {summary.experiment}:"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    for cells in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    if summary.selection is not None:
        lines.append(summary.selection.conclusion)
    return "\n".join(lines)
