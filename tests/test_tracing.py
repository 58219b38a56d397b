"""The tracing seam: a tracer's span wraps every attempt at a unit's task, and its
trace id lands on the Run; the task, sync ones in their thread included, runs
inside the span's context."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalwire import ExperimentRunner, hookimpl
from evalwire.executor import Unit
from evalwire.models import Example
from evalwire.unit import Policy, Work, run_unit

EXAMPLE = Example("e1", {"q": 1}, {"a": 1})
CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("current", default=None)


@dataclass
class FakeSpan:
    trace_id: str | None
    finished: list[tuple[Any, BaseException | None]] = field(default_factory=list)

    def finish(self, output: Any, error: BaseException | None) -> None:
        self.finished.append((output, error))


@dataclass
class FakeTracer:
    spans: list[FakeSpan] = field(default_factory=list)

    @contextmanager
    def task_span(self, example: Example, repetition: int) -> Iterator[FakeSpan]:
        span = FakeSpan(f"{example.id}-{repetition}".ljust(32, "0"))
        self.spans.append(span)
        token = CURRENT.set(span.trace_id)
        try:
            yield span
        finally:
            CURRENT.reset(token)


def run(task: Any, tracer: FakeTracer | None, retries: int = 0) -> Any:
    work = Work("exp", task, (), Policy(retries=retries, backoff=0.001), tracer=tracer)
    return asyncio.run(run_unit(work, Unit(0, EXAMPLE, 2)))


def test_the_trace_id_of_the_task_span_lands_on_the_run() -> None:
    async def task(example: Example) -> Any:
        return CURRENT.get()

    tracer = FakeTracer()
    result = run(task, tracer)

    (span,) = tracer.spans
    assert result.trace_id == span.trace_id == "e1-2".ljust(32, "0")
    assert result.output == span.trace_id  # the task ran inside the span
    assert span.finished == [(span.trace_id, None)]


def test_one_span_covers_every_attempt_and_is_told_the_error() -> None:
    calls = []

    async def task(example: Example) -> Any:
        calls.append(CURRENT.get())
        raise ValueError("nope")

    tracer = FakeTracer()
    result = run(task, tracer, retries=2)

    (span,) = tracer.spans
    assert calls == [span.trace_id] * 3
    assert result.error == "ValueError: nope" and result.trace_id == span.trace_id
    ((output, error),) = span.finished
    assert output is None and isinstance(error, ValueError)


def test_without_a_tracer_a_run_has_no_trace_id() -> None:
    async def task(example: Example) -> Any:
        return CURRENT.get()

    result = run(task, None)
    assert result.trace_id is None and result.output is None


class TracerPlugin:
    def __init__(self) -> None:
        self.tracer = FakeTracer()
        self.asked: list[str] = []

    @hookimpl
    def evalwire_make_tracer(self, experiment: Any) -> FakeTracer:
        self.asked.append(experiment.name)
        return self.tracer


def test_a_plugins_tracer_wraps_sync_tasks_in_their_thread_too(tmp_path: Path) -> None:
    folder = tmp_path / "experiments" / "ctx"
    folder.mkdir(parents=True)
    (folder / "task.py").write_text(
        "import threading\n"
        "from test_tracing import CURRENT\n\n"
        "def task(input):\n"
        "    return [CURRENT.get(), threading.current_thread().name]\n"
    )
    (folder / "dataset.jsonl").write_text(
        '{"id": "a", "input": {"x": 1}}\n{"id": "b", "input": {"x": 2}}\n'
    )
    plugin = TracerPlugin()

    results = ExperimentRunner(
        tmp_path / "experiments", plugins=[plugin], keep_runs=True, print_summary=False
    ).run()

    assert plugin.asked == ["ctx"]
    (result,) = results
    for run_ in result.runs:
        trace_id, thread = run_.output
        assert thread != "MainThread" and not thread.startswith("evalwire-exp")
        assert trace_id == run_.trace_id == f"{run_.example_id}-1".ljust(32, "0")


class BrokenTracerPlugin:
    @hookimpl
    def evalwire_make_tracer(self, experiment: Any) -> FakeTracer:
        raise RuntimeError("no collector")


def test_a_tracer_plugin_that_raises_costs_the_spans_not_the_runs(
    tmp_path: Path, capsys: Any
) -> None:
    folder = tmp_path / "experiments" / "plain"
    folder.mkdir(parents=True)
    (folder / "task.py").write_text("def task(input):\n    return input['x']\n")
    (folder / "dataset.jsonl").write_text('{"id": "a", "input": {"x": 1}}\n')

    (result,) = ExperimentRunner(
        tmp_path / "experiments", plugins=[BrokenTracerPlugin()], keep_runs=True
    ).run()

    assert result.status == "passed" and [r.output for r in result.runs] == [1]
    assert result.runs[0].trace_id is None
    err = capsys.readouterr().err
    why = "plain: no spans: a plugin's evalwire_make_tracer raised RuntimeError: no collector"
    assert why in err
