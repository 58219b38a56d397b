"""Plain-text views of stored experiments: aligned columns, no colours.

Each function returns lines; the commands echo them. Plain text keeps the
output greppable and the import cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from evalwire.store.compare import Comparison
from evalwire.store.queries import StoredExperiment, StoredRun
from evalwire.store.writer import INTERRUPTED, RUNNING

SHORT_ID = 8
#: How many regressed and improved examples ``compare`` lists in text.
CHANGES_SHOWN = 20


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    rows = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(widths[i]) for i, c in enumerate(cells[:-1])]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return [line(list(headers)), *(line(r) for r in rows)]


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def clip(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def scores_line(experiment: StoredExperiment) -> str:
    parts = []
    for name, summary in experiment.scores.items():
        part = f"{name}={number(summary.get('mean'))}"
        if summary.get("errors"):
            part += f" ({summary['errors']} err)"
        parts.append(part)
    return "  ".join(parts) or "-"


def history(experiments: Sequence[StoredExperiment]) -> list[str]:
    """One line per experiment, newest first."""
    rows = []
    for e in experiments:
        runs = f"{e.completed}/{e.total}" if e.total is not None else str(e.completed)
        rows.append(
            [
                e.id[:SHORT_ID],
                when(e.started_at),
                e.name,
                e.status,
                runs,
                str(e.task_errors + e.evaluation_errors),
                seconds(e.duration),
                scores_line(e),
            ]
        )
    return table(["ID", "STARTED", "NAME", "STATUS", "RUNS", "ERRORS", "TIME", "SCORES"], rows)


def header(e: StoredExperiment) -> list[str]:
    """The facts about one experiment, one per line."""
    version = f" (version {e.dataset_version})" if e.dataset_version else ""
    lines = [
        f"experiment  {e.id}",
        f"name        {e.name}  [{e.experiment_name}]",
        f"dataset     {e.dataset}{version}",
        f"status      {e.status}" + (f": {e.error}" if e.error else "") + _writer(e),
        f"started     {when(e.started_at)}   duration {seconds(e.duration)}",
        f"runs        {e.completed}"
        + (f"/{e.total}" if e.total is not None else "")
        + f"   task errors {e.task_errors}   evaluation errors {e.evaluation_errors}",
        f"scores      {scores_line(e)}",
    ]
    if e.git_commit:
        lines.append(f"git         {e.git_commit}")
    if e.params:
        lines.append(f"params      {json.dumps(e.params, default=str)}")
    if e.metadata:
        lines.append(f"metadata    {json.dumps(e.metadata, default=str)}")
    return lines


def _writer(e: StoredExperiment) -> str:
    """Who was writing an unfinished record, after its status."""
    if e.writer is None:
        return ""
    if e.status == INTERRUPTED:
        return (
            f" ({e.writer.describe()} stopped before it finished; "
            "`evalwire run --resume` continues it)"
        )
    if e.status == RUNNING:
        return f" ({e.writer.describe()})"
    return ""


def unfinished(label: str, e: StoredExperiment) -> str | None:
    """A note that one side of a comparison holds only some of its runs, if it does."""
    if e.status == INTERRUPTED:
        state = "was interrupted"
    elif e.status == RUNNING:
        state = "is still running"
    else:
        return None
    of = f" of {e.total}" if e.total is not None else ""
    return (
        f"note: {label} ({e.id[:SHORT_ID]}) {state}: compared on the {e.completed}{of} "
        "run(s) it recorded"
    )


def _cell(run: StoredRun, name: str) -> str:
    for e in run.evaluations:
        if e.name == name:
            if e.error is not None:
                return "error"
            if e.score is not None:
                return number(e.score) + (f" {clip(e.label, 12)}" if e.label else "")
            return clip(e.label or "-", 16)
    return "-"


def runs(runs: Sequence[StoredRun], evaluators: Sequence[str], *, details: bool) -> list[str]:
    """A row per run; task and evaluation errors (and with ``details`` explanations) below."""
    headers = ["#", "EXAMPLE", "REP", "OUTPUT", *evaluators]
    lines = table(
        headers,
        (
            [
                str(r.index),
                clip(r.example_id, 24),
                str(r.repetition),
                "ERROR" if r.error is not None else clip(_show(r.output)),
                *(_cell(r, name) for name in evaluators),
            ]
            for r in runs
        ),
    )
    if not details and not any(r.error or any(e.error for e in r.evaluations) for r in runs):
        return lines
    out = [lines[0]]
    for run, line in zip(runs, lines[1:], strict=True):
        out.append(line)
        if run.error is not None:
            out.append(f"    task error: {run.error}")
        for e in run.evaluations:
            if e.error is not None:
                out.append(f"    {e.name}: error: {e.error}")
            elif details and e.explanation:
                out.append(f"    {e.name}: {clip(e.explanation, 100)}")
    return out


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def comparison(a: StoredExperiment, b: StoredExperiment, result: Comparison) -> list[str]:
    """Means, deltas and CIs per evaluator, then what regressed and improved."""
    lines = [
        f"A  {a.id[:SHORT_ID]}  {a.name}  {when(a.started_at)}"
        + (f"  dataset version {a.dataset_version}" if a.dataset_version else ""),
        f"B  {b.id[:SHORT_ID]}  {b.name}  {when(b.started_at)}"
        + (f"  dataset version {b.dataset_version}" if b.dataset_version else ""),
        "",
    ]
    lines += table(
        ["EVALUATOR", "A", "B", "DELTA", "95% CI", "PAIRS"],
        (
            [
                s.evaluator,
                number(s.mean_a),
                number(s.mean_b),
                number(s.delta, True),
                "-"
                if s.ci_low is None
                else f"[{number(s.ci_low, True)}, {number(s.ci_high, True)}]",
                str(s.pairs),
            ]
            for s in result.evaluators
        ),
    )
    lines.append("")
    lines.append(
        f"matched {result.matched_runs} run(s) over {result.matched_examples} example(s); "
        f"unmatched examples: {result.only_a} only in A, {result.only_b} only in B"
    )
    for title, changes in (("regressed", result.regressed), ("improved", result.improved)):
        lines.append("")
        lines.append(f"{title} ({len(changes)})" + (":" if changes else ""))
        shown = changes[:CHANGES_SHOWN]
        lines += (
            [
                "  " + line
                for line in table(
                    ["EXAMPLE", "EVALUATOR", "A", "B", "DELTA"],
                    (
                        [
                            clip(c.example_id, 30),
                            c.evaluator or "-",
                            number(c.a),
                            number(c.b),
                            c.note if c.note else number(c.delta, True),
                        ]
                        for c in shown
                    ),
                )
            ]
            if shown
            else []
        )
        if len(changes) > len(shown):
            lines.append(f"  … and {len(changes) - len(shown)} more (--json lists all)")
    return lines
