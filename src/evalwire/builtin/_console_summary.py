"""The ``console`` reporter's end of session: the summary table and totals on
stdout, and on stderr why each failed or broken experiment went wrong.

Also the marks and colours the reporter's progress display shares with it.
``rich`` is imported only inside the functions that draw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from evalwire.builtin._errors import clip
from evalwire.builtin._format import duration, error_counts, evaluator_names, score, status_counts

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from evalwire.builtin._errors import DistinctErrors
    from evalwire.models import ExperimentResult, ExperimentSpec

STATUS_STYLE = {"passed": "green", "failed": "red", "error": "bold red"}
_MAX_MESSAGE = 500  # characters of one error message shown without -v


@dataclass(frozen=True)
class Glyphs:
    """The marks the console draws: a dash for no score, and passed and failed ticks."""

    dash: str
    ok: str
    bad: str

    @classmethod
    def for_stream(cls, stream: TextIO) -> Glyphs:
        """Typographic marks when the stream can encode them, ASCII otherwise."""
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "—✓✗".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            return cls("-", "+", "x")
        return cls("—", "✓", "✗")


def print_summary(
    console: Any,
    results: list[ExperimentResult],
    specs: Iterable[ExperimentSpec],
    *,
    started_at: float,
    glyphs: Glyphs,
    styled: bool,
    dry_run: bool,
) -> None:
    """The table of experiments × evaluators, then the totals line, on a rich ``console``."""
    console.print(_table(results, specs, glyphs, styled=styled))
    console.print(_totals(results, time.time() - started_at), highlight=False)
    if dry_run:
        console.print("dry run: nothing recorded", highlight=False)
    console.file.flush()


def details(
    results: list[ExperimentResult], errors: Mapping[str, DistinctErrors], *, verbose: bool
) -> list[str]:
    """Why each broken or failed experiment went wrong, for stderr.

    ``errors`` holds the messages runs raised, by experiment id; ``verbose``
    shows tracebacks and messages in full.
    """
    lines: list[str] = []
    for result in results:
        if result.status == "error":
            lines.append(f"experiment {result.name}: {result.error or 'could not run'}")
            traceback = result.extra.get("traceback")
            if verbose and traceback:
                lines.extend(f"  {t}" for t in str(traceback).rstrip().splitlines())
        elif result.status == "failed":
            counts = error_counts(result)
            why = ", ".join(counts) or "failed"
            if result.error:
                why = f"{why}: {result.error}" if counts else result.error
            lines.append(f"experiment {result.name}: {why}")
            found = errors.get(result.id)
            for message, example_id in found.messages.items() if found else ():
                shown = message if verbose else clip(message, _MAX_MESSAGE)
                lines.append(f"  {shown} (example {example_id})")
    return lines


def _table(
    results: list[ExperimentResult],
    specs: Iterable[ExperimentSpec],
    glyphs: Glyphs,
    *,
    styled: bool,
) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    evaluators = evaluator_names(specs, results)
    table = Table(
        box=box.SIMPLE_HEAD if styled else _ASCII_HEAD(),
        header_style="bold" if styled else "",
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("experiment", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("runs", justify="right", no_wrap=True)
    table.add_column("task errors", justify="right", no_wrap=True)
    for name in evaluators:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    dash = glyphs.dash
    for result in results:
        total = "" if result.total is None else f"/{result.total}"
        table.add_row(
            Text(result.name),
            Text(result.status, style=STATUS_STYLE.get(result.status, "")),
            f"{result.completed}{total}",
            str(result.task_errors),
            *(score(result.scores.get(name), dash) for name in evaluators),
            duration(result.duration),
        )
    return table


def _ASCII_HEAD() -> Any:  # noqa: N802 - mirrors rich.box.SIMPLE_HEAD
    """rich's SIMPLE_HEAD box (a rule under the header only) drawn in ASCII."""
    from rich.box import Box

    return Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def _totals(results: list[ExperimentResult], elapsed: float) -> Any:
    from rich.text import Text

    text = Text()
    for i, (status, number) in enumerate(status_counts(results)):
        if i:
            text.append(", ")
        text.append(f"{number} {status}", style=STATUS_STYLE.get(status, ""))
    text.append(f" in {duration(max(0.0, elapsed))}")
    return text
