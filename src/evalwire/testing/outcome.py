"""What one evalwire run did, with the assertions tests make about it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from evalwire.config import Config
from evalwire.models import ExperimentResult, Run

__all__ = ["Outcome"]


@dataclass
class Outcome:
    """What one evalwire run did: exit code, results, and everything it printed.

    ``results`` are the :class:`ExperimentResult` of every experiment, with
    their runs. From a subprocess they are read back from the ``--json``
    document (kept in ``document``), so outputs JSON cannot hold are their
    ``repr``. ``error`` is the message of a usage error (exit status 2), which
    is also on ``stderr``. ``config`` is the session's configuration, for
    in-process runs only.
    """

    exit_code: int
    results: list[ExperimentResult] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    document: dict[str, Any] | None = None
    error: str | None = None
    command: str = "evalwire"
    duration: float = 0.0
    config: Config | None = field(default=None, repr=False)

    # -- reading results ---------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The name of every experiment that ran, in the order the session reported them."""
        return [r.name for r in self.results]

    def result(self, name: str) -> ExperimentResult:
        """The result of experiment ``name``; a missing one is a :class:`LookupError`."""
        found = self._find(name)
        if found is None:
            raise LookupError(self._missing(name))
        return found

    def runs(self, name: str) -> list[Run]:
        """The runs of experiment ``name``, in ``(index, repetition)`` order."""
        return list(self.result(name).runs)

    def outputs(self, name: str) -> list[Any]:
        """The task's output of every run of experiment ``name``, in order."""
        return [run.output for run in self.runs(name)]

    def scores(self, name: str) -> dict[str, float]:
        """Each evaluator's mean score in experiment ``name`` (NaN if it gave none)."""
        return {ev: summary.mean for ev, summary in sorted(self.result(name).scores.items())}

    # -- assertions --------------------------------------------------------------------

    def assert_passed(self) -> None:
        """Every experiment ran and was scored without error, and evalwire exited 0."""
        __tracebackhide__ = True
        failed = [r for r in self.results if r.failed]
        if self.exit_code == 0 and not failed:
            return
        problems = [f"expected evalwire to pass, but it exited {self.exit_code}"]
        if self.error:
            problems.append(f"usage error: {self.error}")
        problems.extend(_describe_failure(r) for r in failed)
        raise AssertionError("\n".join(problems) + "\n" + self.transcript)

    def assert_exit(self, code: int) -> None:
        """evalwire exited with status ``code``."""
        __tracebackhide__ = True
        if self.exit_code != code:
            raise AssertionError(
                f"expected evalwire to exit {code}, but it exited {self.exit_code}\n"
                + self.transcript
            )

    def assert_score(
        self, experiment: str, evaluator: str, value: float, abs: float = 1e-9
    ) -> None:
        """Evaluator ``evaluator``'s mean score in ``experiment`` is ``value`` (within ``abs``)."""
        __tracebackhide__ = True
        result = self._find(experiment)
        if result is None:
            raise AssertionError(self._missing(experiment))
        summary = result.scores.get(evaluator)
        if summary is None:
            known = ", ".join(sorted(result.scores)) or "none"
            raise AssertionError(
                f"experiment '{experiment}' has no scores from evaluator '{evaluator}' "
                f"(it has: {known}; status {result.status}"
                + (f": {result.error}" if result.error else "")
                + ")\n"
                + self.transcript
            )
        mean = summary.mean
        if math.isnan(mean) or not math.isclose(mean, value, rel_tol=0.0, abs_tol=abs):
            scored = f"{summary.count} scored, {summary.errors} errors"
            raise AssertionError(
                f"experiment '{experiment}', evaluator '{evaluator}': mean score {mean!r} "
                f"({scored}), expected {value!r} ± {abs!r}\n"
                + _score_table(result)
                + self.transcript
            )

    # -- messages ------------------------------------------------------------------------

    @property
    def transcript(self) -> str:
        """The command, its exit status and everything it printed, for failure messages."""
        return (
            f"{self.command} -> exit {self.exit_code} in {self.duration:.2f}s\n"
            f"--- stdout\n{self.stdout}"
            + ("" if not self.stdout or self.stdout.endswith("\n") else "\n")
            + f"--- stderr\n{self.stderr}"
        )

    def _find(self, name: str) -> ExperimentResult | None:
        for result in self.results:
            if result.name == name:
                return result
        return None

    def _missing(self, name: str) -> str:
        found = ", ".join(repr(n) for n in self.names) or "none"
        return f"no experiment named '{name}' ran (found: {found})\n{self.transcript}"


def _describe_failure(result: ExperimentResult) -> str:
    lines = [f"experiment '{result.name}' {result.status}"]
    if result.error:
        lines[0] += f": {result.error}"
    shown = 0
    for run in result.runs:
        problems = [f"task: {run.error}"] if run.error else []
        problems += [f"{e.name}: {e.error}" for e in run.evaluations if e.error]
        for problem in problems:
            if shown == 5:
                lines.append("  ...")
                return "\n".join(lines)
            lines.append(f"  example {run.example_id} (repetition {run.repetition}) {problem}")
            shown += 1
    return "\n".join(lines)


def _score_table(result: ExperimentResult) -> str:
    rows = [
        f"  {name}: mean {s.mean!r} ({s.count} scored, {s.errors} errors)"
        for name, s in sorted(result.scores.items())
    ]
    return "scores of '" + result.name + "':\n" + "\n".join(rows) + "\n"
