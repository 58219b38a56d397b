"""The ``console`` reporter: progress while experiments run, a summary table at the end.

The hooks are called directly, in the order the session calls them, with real
Config, Session, Experiment and Run objects. Under pytest stdout is not a
terminal, so most tests see the plain (CI log) output; one runs on a real
pseudo-terminal to see the live progress bar.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from evalwire.builtin import console
from evalwire.config import Config
from evalwire.models import Evaluation, Example, ExperimentResult, ExperimentSpec, Run
from evalwire.plugins import Plugins
from evalwire.session import Experiment, Session


@dataclass
class Planned:
    """An experiment to replay through the hooks: its runs, or why it could not run."""

    name: str
    runs: Sequence[Run] = ()
    evaluators: tuple[str, ...] = ("acc",)
    total: int | None = -1  # -1: the number of runs
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def make_run(
    index: int,
    *,
    error: str | None = None,
    scores: dict[str, float] | None = None,
    eval_errors: dict[str, str] | None = None,
) -> Run:
    evaluations = [Evaluation(name, score=score) for name, score in (scores or {}).items()]
    evaluations += [Evaluation(name, error=msg) for name, msg in (eval_errors or {}).items()]
    return Run(
        example=Example(str(index), {"q": index}),
        repetition=1,
        output=None if error else f"answer {index}",
        error=error,
        started_at=0,
        ended_at=1,
        evaluations=tuple(evaluations),
        index=index,
    )


def replay(config: Config, planned: Iterable[Planned]) -> list[ExperimentResult]:
    """Call the reporter's hooks as a session running ``planned`` would."""
    planned = list(planned)
    session = Session(config, Plugins())
    session.specs = [
        ExperimentSpec(p.name, task=None, evaluators=dict.fromkeys(p.evaluators)) for p in planned
    ]
    session.started_at = time.time()
    console.evalwire_session_start(session)
    results = []
    for plan, spec in zip(planned, session.specs, strict=True):
        result = ExperimentResult(
            id=f"id-{plan.name}",
            name=plan.name,
            experiment_name=f"eval_{plan.name}",
            dataset=plan.name,
            started_at=time.time(),
            total=len(plan.runs) if plan.total == -1 else plan.total,
        )
        experiment = Experiment(spec, config, result)
        if plan.error is not None:
            result.status, result.error = "error", plan.error
            result.extra.update(plan.extra)
        console.evalwire_experiment_start(experiment)
        for run in plan.runs:
            result.record(run)
            console.evalwire_run_complete(experiment, run)
        result.ended_at = result.started_at + 2.5
        if result.status == "passed" and (result.task_errors or result.evaluation_errors):
            result.status = "failed"
        console.evalwire_experiment_finish(experiment, result)
        results.append(result)
    status = 1 if any(r.failed for r in results) else 0
    assert console.evalwire_session_finish(session, results, status) is None
    return results


def good_runs(count: int, score: float = 1.0) -> list[Run]:
    return [make_run(i, scores={"acc": score}) for i in range(count)]


def table_row(out: str, name: str) -> list[str]:
    """The cells of the summary row for experiment ``name`` (split on runs of spaces)."""
    for line in out.splitlines():
        if line.startswith(f"{name} "):
            return [cell for cell in line.split("  ") if cell.strip()]
    raise AssertionError(f"no row for {name} in:\n{out}")


# -- the summary table -------------------------------------------------------


def test_summary_table_has_a_row_per_experiment_with_status_runs_and_duration(capsys):
    replay(Config(), [Planned("qa", good_runs(4)), Planned("chat", good_runs(2))])

    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("experiment"))
    assert header.split() == ["experiment", "status", "runs", "task", "errors", "acc", "duration"]
    assert [c.strip() for c in table_row(out, "qa")] == ["qa", "passed", "4/4", "0", "1.00", "2.5s"]
    assert [c.strip() for c in table_row(out, "chat")][:3] == ["chat", "passed", "2/2"]


def test_summary_shows_the_mean_score_with_two_decimals(capsys):
    runs = [make_run(i, scores={"acc": s}) for i, s in enumerate([1.0, 1.0, 0.5])]
    replay(Config(), [Planned("qa", runs)])

    assert "0.83" in table_row(capsys.readouterr().out, "qa")[4]


def test_summary_has_a_column_per_evaluator_across_experiments_with_a_dash_when_absent(capsys):
    replay(
        Config(),
        [
            Planned("qa", [make_run(0, scores={"acc": 1.0})], evaluators=("acc",)),
            Planned("chat", [make_run(0, scores={"judge": 0.25})], evaluators=("judge",)),
        ],
    )

    out = capsys.readouterr().out
    assert "acc" in out and "judge" in out
    assert [c.strip() for c in table_row(out, "qa")][4:6] == ["1.00", "—"]
    assert [c.strip() for c in table_row(out, "chat")][4:6] == ["—", "0.25"]


def test_summary_shows_evaluation_errors_next_to_the_mean(capsys):
    runs = [
        make_run(0, scores={"acc": 1.0}),
        make_run(1, eval_errors={"acc": "KeyError: 'answer'"}),
        make_run(2, eval_errors={"acc": "KeyError: 'answer'"}),
    ]
    replay(Config(), [Planned("qa", runs)])

    assert table_row(capsys.readouterr().out, "qa")[4].strip() == "1.00 (2 errors)"


def test_summary_counts_task_errors(capsys):
    runs = [make_run(0, error="ValueError: no"), *good_runs(3)[1:]]
    replay(Config(), [Planned("qa", runs)])

    cells = [c.strip() for c in table_row(capsys.readouterr().out, "qa")]
    assert cells[1:4] == ["failed", "3/3", "1"]


def test_summary_ends_with_the_count_of_each_status(capsys):
    replay(
        Config(),
        [
            Planned("qa", good_runs(2)),
            Planned("chat", [make_run(0, error="ValueError: no")]),
            Planned("lost", error="dataset 'lost' not found"),
        ],
    )

    out = capsys.readouterr().out.rstrip().splitlines()
    assert out[-1].startswith("1 passed, 1 failed, 1 error in ")


def test_summary_off_a_terminal_uses_plain_ascii_rules(capsys):
    replay(Config(), [Planned("qa", good_runs(1))])

    out = capsys.readouterr().out
    assert "\x1b[" not in out  # no colours in a CI log
    assert not set(out) & set("─━│┃┏┓└┘")
    assert any(set(line) == {"-"} for line in out.splitlines())


def test_summary_is_not_squeezed_to_80_columns_off_a_terminal(capsys):
    evaluators = tuple(f"evaluator_number_{i}" for i in range(6))
    run = make_run(0, scores=dict.fromkeys(evaluators, 0.5))
    replay(Config(), [Planned("a_rather_long_experiment_name", [run], evaluators=evaluators)])

    out = capsys.readouterr().out
    assert all(name in out for name in evaluators)
    assert "…" not in out


# -- errors under the table --------------------------------------------------


def test_experiment_that_could_not_run_is_named_with_its_error_on_stderr(capsys):
    replay(Config(), [Planned("lost", error="dataset 'lost' not found")])

    captured = capsys.readouterr()
    assert "experiment lost: dataset 'lost' not found" in captured.err.splitlines()
    assert table_row(captured.out, "lost")[1].strip() == "error"


def test_failed_experiment_says_how_many_task_and_evaluation_errors(capsys):
    runs = [
        make_run(0, error="ValueError: no"),
        make_run(1, error="ValueError: no"),
        make_run(2, eval_errors={"acc": "KeyError: 'x'"}),
    ]
    replay(Config(), [Planned("qa", runs)])

    err = capsys.readouterr().err
    assert "experiment qa: 2 task errors, 1 evaluation error" in err.splitlines()


def test_failed_experiment_shows_the_first_three_distinct_error_messages(capsys):
    messages = ["ValueError: a", "ValueError: a", "TimeoutError: b", "KeyError: c", "OSError: d"]
    runs = [make_run(i, error=m) for i, m in enumerate(messages)]
    replay(Config(), [Planned("qa", runs)])

    err = capsys.readouterr().err
    assert "  task: ValueError: a (example 0)" in err.splitlines()
    assert "  task: TimeoutError: b (example 2)" in err.splitlines()
    assert "  task: KeyError: c (example 3)" in err.splitlines()
    assert "OSError" not in err
    assert err.count("ValueError: a") == 1


def test_evaluation_error_messages_name_the_evaluator(capsys):
    replay(Config(), [Planned("qa", [make_run(0, eval_errors={"acc": "KeyError: 'x'"})])])

    assert "  evaluator 'acc': KeyError: 'x' (example 0)" in capsys.readouterr().err


def test_traceback_of_a_broken_experiment_is_shown_with_verbose(capsys):
    broken = Planned(
        "qa", error="RuntimeError: bug", extra={"traceback": "Traceback:\n  in plugin"}
    )
    replay(Config(verbosity=1), [broken])

    assert "  Traceback:\n    in plugin" in capsys.readouterr().err


def test_traceback_of_a_broken_experiment_is_hidden_without_verbose(capsys):
    broken = Planned(
        "qa", error="RuntimeError: bug", extra={"traceback": "Traceback:\n  in plugin"}
    )
    replay(Config(), [broken])

    assert "Traceback" not in capsys.readouterr().err


def test_passing_session_writes_nothing_to_stderr(capsys):
    replay(Config(), [Planned("qa", good_runs(3))])

    assert capsys.readouterr().err == ""


# -- progress off a terminal -------------------------------------------------


def test_plain_output_says_when_an_experiment_starts_and_ends(capsys):
    replay(Config(), [Planned("qa", good_runs(3))])

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "qa: running 3 examples"
    assert lines[1] == "qa: passed, 3/3 runs in 2.5s"


def test_plain_output_prints_no_line_per_run(capsys):
    replay(Config(), [Planned("qa", good_runs(500))])

    out = capsys.readouterr().out
    assert sum(line.startswith("qa:") for line in out.splitlines()) == 2


def test_plain_output_prints_progress_lines_for_a_long_experiment(capsys, monkeypatch):
    monkeypatch.setattr(console, "_LINE_INTERVAL", 0.0)  # every run is "5 s later"
    replay(Config(), [Planned("qa", [*good_runs(2), make_run(2, error="ValueError: x")])])

    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("qa: 1/3 runs, ")
    assert lines[3].startswith("qa: 3/3 runs, 1 error, ")
    assert "runs/s" in lines[1]


def test_plain_output_says_the_size_is_unknown_for_a_streamed_dataset(capsys):
    replay(Config(), [Planned("qa", good_runs(2), total=None)])

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "qa: running (dataset size unknown)"
    assert lines[1] == "qa: passed, 2 runs in 2.5s"


def test_plain_output_counts_runs_with_repetitions(capsys):
    replay(Config(repetitions=3), [Planned("qa", good_runs(6))])

    assert capsys.readouterr().out.splitlines()[0] == (
        "qa: running 6 runs (2 examples x 3 repetitions)"
    )


def test_plain_output_reports_an_experiment_that_could_not_run_when_it_ends(capsys):
    replay(Config(), [Planned("lost", error="dataset 'lost' not found")])

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "lost: error: dataset 'lost' not found"


# -- quieter -----------------------------------------------------------------


def test_quiet_prints_only_the_table_and_the_errors(capsys):
    replay(Config(verbosity=-1), [Planned("qa", [make_run(0, error="ValueError: no")])])

    captured = capsys.readouterr()
    assert not any(line.startswith("qa:") for line in captured.out.splitlines())
    assert table_row(captured.out, "qa")[1].strip() == "failed"
    assert "experiment qa: 1 task error" in captured.err


def test_print_summary_false_prints_nothing_at_all(capsys):
    config = Config(options={"print_summary": False})
    replay(config, [Planned("qa", [make_run(0, error="ValueError: no")])])

    assert capsys.readouterr() == ("", "")


def test_dry_run_says_nothing_was_recorded(capsys):
    replay(Config(dry_run=2), [Planned("qa", good_runs(2))])

    out = capsys.readouterr().out
    assert out.splitlines()[0] == "qa: dry run, running 2 examples"
    assert "dry run: nothing recorded" in out.splitlines()


# -- robustness --------------------------------------------------------------


def test_each_session_starts_with_fresh_state(capsys):
    config = Config()
    replay(config, [Planned("qa", [make_run(0, error="ValueError: first session")])])
    capsys.readouterr()

    replay(config, [Planned("qa", [make_run(0, error="ValueError: second session")])])

    err = capsys.readouterr().err
    assert "second session" in err
    assert "first session" not in err


def test_hooks_without_a_session_do_nothing(capsys):
    config = Config()
    spec = ExperimentSpec("qa", task=None)
    result = ExperimentResult(id="1", name="qa", experiment_name="eval_qa", dataset="qa")
    experiment = Experiment(spec, config, result)

    console.evalwire_experiment_start(experiment)
    console.evalwire_run_complete(experiment, make_run(0))
    console.evalwire_experiment_finish(experiment, result)

    assert capsys.readouterr() == ("", "")


def test_a_reporter_bug_is_one_line_on_stderr_not_an_exception(capsys):
    config = Config()
    session = Session(config, Plugins())
    console.evalwire_session_start(session)
    spec = ExperimentSpec("qa", task=None)
    result = ExperimentResult(id="1", name="qa", experiment_name="eval_qa", dataset="qa")
    result.ended_at = "late"  # type: ignore[assignment]  # not a time: the duration fails

    experiment = Experiment(spec, config, result)
    console.evalwire_experiment_start(experiment)
    console.evalwire_experiment_finish(experiment, result)
    console.evalwire_session_finish(session, [result], 0)

    err = capsys.readouterr().err
    assert err.startswith("evalwire: the console reporter failed (")
    assert len(err.splitlines()) == 1


def test_importing_the_plugin_does_not_import_rich():
    code = "import sys, evalwire.builtin.console; print('rich' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


# -- on a terminal -----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_terminal_shows_a_live_progress_bar_then_a_styled_table(monkeypatch):
    import pty

    leader, follower = pty.openpty()
    screen = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                return
            if not data:
                return
            screen.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    terminal = os.fdopen(follower, "w", encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    try:
        config = Config()
        session = Session(config, Plugins())
        session.specs = [ExperimentSpec("qa", task=None, evaluators={"acc": None})]
        console.evalwire_session_start(session)
        result = ExperimentResult(id="1", name="qa", experiment_name="e", dataset="qa", total=6)
        experiment = Experiment(session.specs[0], config, result)
        console.evalwire_experiment_start(experiment)
        for run in good_runs(5):
            result.record(run)
            console.evalwire_run_complete(experiment, run)
            time.sleep(0.06)  # the bar's numbers are copied at most every 50 ms
        time.sleep(0.3)  # rich redraws ten times a second
        drawn_mid_run = bytes(screen).decode("utf-8", "replace")
        result.ended_at = result.started_at + 1
        console.evalwire_experiment_finish(experiment, result)
        console.evalwire_session_finish(session, [result], 0)
        terminal.flush()
        time.sleep(0.2)
    finally:
        monkeypatch.undo()
        terminal.close()
        reader.join(timeout=2)
        os.close(leader)

    drawn = bytes(screen).decode("utf-8", "replace")
    assert "qa" in drawn_mid_run and "5/6" in drawn_mid_run and "runs/s" in drawn_mid_run
    assert "qa: passed, 5/6 runs in 1.0s" in drawn
    assert "─" in drawn  # a terminal gets rich's box rules
