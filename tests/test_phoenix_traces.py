"""Task spans in Phoenix: every recorded run links to a trace that opens in the
experiment's project, against a real Phoenix server; ``--no-traces`` sends none;
a Phoenix that takes no spans costs one line, never a run."""

from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from clihelpers import rows, write_experiment

pytest.register_assert_rewrite("phoenix_fixture")
from phoenix_fixture import (  # noqa: E402
    PhoenixServer,
    create_dataset,
    experiments_of,
    free_port,
    recorded_runs,
    unique,
)
from test_phoenix import run  # noqa: E402

from evalwire.models import Example  # noqa: E402
from evalwire.phoenix import traces  # noqa: E402
from evalwire.unit import Work  # noqa: E402

pytest_plugins = ["phoenix_fixture"]

# The task answers with the trace id of the span current while it runs.
SYNC_TASK = """
from opentelemetry import trace

def task(input):
    if input["x"] == 1:
        raise ValueError("no ones")
    return format(trace.get_current_span().get_span_context().trace_id, "032x")
"""
ASYNC_TASK = """
import asyncio
from opentelemetry import trace

async def task(input):
    await asyncio.sleep(0.01)
    return format(trace.get_current_span().get_span_context().trace_id, "032x")
"""


def spans_of(api: Any, project: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The project's spans, once Phoenix has ingested ``count`` (it inserts in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/v1/projects/{project}/spans", params={"limit": 1000})
        found = response.json()["data"] if response.status_code == 200 else []
        if len(found) >= count or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.2)


def experiment(tmp_path: Path, name: str, task: str) -> None:
    folder = write_experiment(tmp_path / "experiments", name, task=task)
    (folder / "dataset.jsonl").unlink()


@pytest.mark.parametrize("task", [SYNC_TASK, ASYNC_TASK], ids=["sync", "async"])
def test_each_run_links_to_its_task_span_in_the_experiments_project(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_api: Any, phoenix_env: Any, task: str
) -> None:
    name = unique("traced")
    created = create_dataset(phoenix_api, name, rows(3))
    experiment(tmp_path, name, task)

    result = run(tmp_path, "--phoenix", phoenix_server.url, "--retries", "0", env=phoenix_env())

    assert "could not be posted" not in result.output and "traces:" not in result.output, result
    (recorded,) = experiments_of(phoenix_api, created["dataset_id"])
    project = recorded["project_name"]
    runs = {r["input"]["x"]: r for r in recorded_runs(phoenix_api, recorded["id"])}
    assert all(r["trace_id"] and len(r["trace_id"]) == 32 for r in runs.values())
    assert len({r["trace_id"] for r in runs.values()}) == 3  # a trace per run
    spans = {s["context"]["trace_id"]: s for s in spans_of(phoenix_api, project, 3)}
    assert set(spans) == {r["trace_id"] for r in runs.values()}
    for x, run_ in runs.items():
        span = spans[run_["trace_id"]]
        assert span["name"] == f"Task: {name}" and span["parent_id"] is None
        assert span["span_kind"] == "CHAIN"
        assert span["attributes"]["input.value"] == f'{{"x": {x}}}'
        assert span["attributes"]["evalwire.example_id"] == f"ex{x}"
        if run_["error"]:  # the sync task fails on x == 1
            assert span["status_code"] == "ERROR" and "no ones" in span["status_message"]
        else:
            # The task ran inside its span: it saw the trace id its run was posted with.
            assert run_["output"] == run_["trace_id"] == span["attributes"]["output.value"]
            assert span["status_code"] == "OK"
    assert (result.returncode, bool(runs[1]["error"])) in ((0, False), (1, True))


def test_no_traces_records_the_runs_without_spans(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_api: Any, phoenix_env: Any
) -> None:
    name = unique("untraced")
    created = create_dataset(phoenix_api, name, rows(3))
    experiment(tmp_path, name, ASYNC_TASK)

    result = run(tmp_path, "--phoenix", phoenix_server.url, "--no-traces", env=phoenix_env())

    assert result.returncode == 0, result
    (recorded,) = experiments_of(phoenix_api, created["dataset_id"])
    runs = recorded_runs(phoenix_api, recorded["id"])
    assert len(runs) == 3 and all(r["trace_id"] is None for r in runs)
    # Outside a span the task sees the invalid (all-zero) trace id.
    assert {r["output"] for r in runs} == {"0" * 32}
    assert spans_of(phoenix_api, recorded["project_name"], 1, timeout=2.0) == []


# -- without a server -----------------------------------------------------------


class Unreachable:
    url = f"http://127.0.0.1:{free_port()}"
    headers = {"Authorization": "Bearer sk-never-shown"}


def test_spans_phoenix_does_not_take_are_counted_once_and_logged_never(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(traces, "EXPORT_TIMEOUT", 0.5)
    tracing = traces.Traces(Unreachable)
    tracer = tracing.tracer("exp", "Experiment-1")
    assert tracer is not None
    ids = []
    with caplog.at_level(logging.DEBUG):
        for i in range(5):
            with tracer.task_span(Example(f"e{i}", {"i": i}), 1) as span:
                span.finish({"i": i}, None)
            ids.append(span.trace_id)
        lines = tracing.finish(timeout=5.0)

    assert len(set(ids)) == 5 and all(len(t or "") == 32 for t in ids)
    assert lines == [
        f"5 of 5 task span(s) could not be sent to {Unreachable.url}/v1/traces "
        "(traces are best effort; the runs are recorded)"
    ]
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


def test_an_outage_drops_spans_past_the_queue_quietly_and_the_end_waits_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(traces, "EXPORT_TIMEOUT", 2.0)
    tracing = traces.Traces(Unreachable)
    tracer = tracing.tracer("exp", "Experiment-1")
    assert tracer is not None
    with caplog.at_level(logging.DEBUG):
        for i in range(3000):  # more than the span queue holds (2,048)
            with tracer.task_span(Example(f"e{i}", {}), 1) as span:
                span.finish(i, None)
        started = time.monotonic()
        lines = tracing.finish(timeout=1.0)
        took = time.monotonic() - started

    assert took < 5.0, took  # one flush budget, then what is left is dropped
    assert lines == [
        f"3000 of 3000 task span(s) could not be sent to {Unreachable.url}/v1/traces "
        "(traces are best effort; the runs are recorded)"
    ]
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


def test_an_experiment_without_a_project_runs_untraced_and_says_why() -> None:
    tracing = traces.Traces(Unreachable)
    assert tracing.tracer("exp", None) is None
    assert tracing.finish() == ["exp: Phoenix named no project for it; its runs have no traces"]


def test_a_tracer_does_not_travel_to_other_processes() -> None:
    tracing = traces.Traces(Unreachable)
    tracer = tracing.tracer("exp", "Experiment-1")
    work = Work("exp", lambda example: None, (), tracer=tracer)
    try:
        assert pickle.loads(pickle.dumps(tracer)) is None
        assert cloudpickle.loads(cloudpickle.dumps(work)).tracer is None
    finally:
        tracing.finish(timeout=0.1)
