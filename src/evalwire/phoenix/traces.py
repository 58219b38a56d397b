"""Task spans in Phoenix, so each recorded run's trace opens from the experiment.

When the recorder records an experiment, its tracer (the answer to
``evalwire_make_tracer``) puts every task call in a span named
``Task: {experiment}``: OpenInference kind ``CHAIN``, the example's input and
the task's output as JSON, and status ``ERROR`` with the exception when the task
failed. The span is the current one while the task runs (in a sync task's
thread too), so spans the task's own code makes carry the run's trace id. The
run is posted with that trace id.

Spans go to ``{url}/v1/traces`` over OTLP/HTTP, in batches, from a thread of
their own, into the Phoenix project Phoenix made for the experiment. Phoenix
names that project only when it creates the experiment, so the tracer is made
once the experiment exists: the experiment waits for that (at most
``[phoenix] trace_wait`` seconds, default 10) before its first task, and runs
untraced if Phoenix has not answered by then.

Best effort, always: a span is never worth a run. Export failures are counted
and said in one line at the end, not logged span by span; the OpenTelemetry
SDK is imported only when tracing is on, and if it cannot be, runs are
recorded without traces. ``--no-traces`` or ``[phoenix] traces = false`` turns
spans off. The tracer does not travel: an executor that pickles the work to
other processes (Dask) runs those tasks untraced.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalwire.models import Example
    from evalwire.phoenix.client import Connection

__all__ = ["TaskTracer", "Traces"]

#: OpenInference's resource attribute naming a span's Phoenix project.
PROJECT_NAME = "openinference.project.name"
#: Seconds the exporter waits for Phoenix to take one batch (its own retries included).
EXPORT_TIMEOUT = 5.0
#: Seconds the session waits, at the end, for the last spans to leave.
FLUSH_TIMEOUT = 10.0

_quiet = threading.local()
_active = 0  # sessions tracing right now: while any is, a full span queue is quiet too


class _Quiet(logging.Filter):
    """Drops the OpenTelemetry SDK's own records about evalwire's spans: failures
    are counted and said once, not logged batch by batch or span by span.

    A record is evalwire's while evalwire's exporter is exporting in this thread;
    the "queue full" warning (one per dropped span, from the thread that ended
    the span) is dropped while a session traces.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_quiet, "on", False):
            return False
        return not (_active and str(record.msg).startswith("Queue full"))


class Traces:
    """The tracers of one session's Phoenix connection: one per recorded experiment."""

    def __init__(self, connection: Callable[[], Connection], *, wait: float = 10.0) -> None:
        self._connection = connection  # made when first asked for
        self.wait = wait
        self.started = itertools.count()  # next() is atomic: spans opened, from any thread
        self.sent = 0  # spans Phoenix took
        self.deadline: float | None = None  # set at the end: past it, spans are dropped
        self.untraced: list[str] = []  # experiments that ran without spans, and why
        self._providers: list[Any] = []
        self._lock = threading.Lock()

    def tracer(self, name: str, project: str | None) -> TaskTracer | None:
        """A tracer exporting ``name``'s task spans into Phoenix project ``project``."""
        if not project:
            self.untraced.append(f"{name}: Phoenix named no project for it")
            return None
        try:
            provider = self._provider(project)
        except ImportError as exc:
            self.untraced.append(f"{name}: OpenTelemetry is not importable ({exc})")
            return None
        global _active
        with self._lock:
            if not self._providers:
                with _filter_lock:
                    _active += 1
            self._providers.append(provider)
        return TaskTracer(provider.get_tracer("evalwire"), f"Task: {name}", self.started)

    def _provider(self, project: str) -> Any:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        _install_filter()
        connection = self._connection()
        exporter = OTLPSpanExporter(
            endpoint=f"{connection.url}/v1/traces",
            headers=dict(connection.headers),
            timeout=EXPORT_TIMEOUT,
        )
        provider = TracerProvider(resource=Resource({PROJECT_NAME: project}))
        provider.add_span_processor(
            BatchSpanProcessor(
                _Counting(exporter, self),  # type: ignore[arg-type]  # a SpanExporter by duck typing
                export_timeout_millis=EXPORT_TIMEOUT * 1000,
            )
        )
        return provider

    def took(self, spans: int) -> None:
        with self._lock:
            self.sent += spans

    def finish(self, timeout: float = FLUSH_TIMEOUT) -> list[str]:
        """Send the spans still queued (for ``timeout`` seconds, plus a batch in flight),
        stop; the lines worth saying."""
        global _active
        with self._lock:
            providers, self._providers = self._providers, []
        # The SDK's flush sends every queued batch whatever its timeout says, so the
        # exporter keeps the budget: past the deadline it drops what is left.
        self.deadline = time.monotonic() + timeout
        for provider in providers:
            provider.force_flush()
        for provider in providers:
            provider.shutdown()
        if providers:
            with _filter_lock:
                _active -= 1
        lines = [f"{why}; its runs have no traces" for why in self.untraced]
        started = next(self.started)
        if self.sent < started:
            lines.append(
                f"{started - self.sent} of {started} task span(s) could not be sent to "
                f"{self._connection().url}/v1/traces "
                "(traces are best effort; the runs are recorded)"
            )
        return lines


class _Counting:
    """Wraps the OTLP exporter (a SpanExporter by duck typing, so importing this
    module needs no SDK): counts what Phoenix took, keeps its failures quiet."""

    def __init__(self, inner: Any, traces: Traces) -> None:
        self.inner = inner
        self.traces = traces

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        deadline = self.traces.deadline
        if deadline is not None and time.monotonic() >= deadline:
            return SpanExportResult.FAILURE
        _quiet.on = True
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        finally:
            _quiet.on = False
        if result == SpanExportResult.SUCCESS:
            self.traces.took(len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # the inner exporter sends each batch as it is handed one


_filter_lock = threading.Lock()
_filter_installed = False


def _install_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if not _filter_installed:
            for name in (
                "opentelemetry.exporter.otlp.proto.http.trace_exporter",
                "opentelemetry.exporter.otlp.proto.http._common",
                "opentelemetry.sdk.trace.export",
                "opentelemetry.sdk._shared_internal",
            ):
                logging.getLogger(name).addFilter(_Quiet())
            _filter_installed = True


class _Span:
    """The task's span as the unit of work sees it (:class:`evalwire.tracing.TaskSpan`)."""

    __slots__ = ("span", "trace_id")

    def __init__(self, span: Any) -> None:
        self.span = span
        trace_id = span.get_span_context().trace_id
        self.trace_id = f"{trace_id:032x}" if trace_id else None

    def finish(self, output: Any, error: BaseException | None) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self.span
        try:
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            elif output is not None:
                if isinstance(output, str):
                    span.set_attribute("output.value", output)
                else:
                    span.set_attribute("output.value", _json(output))
                    span.set_attribute("output.mime_type", "application/json")
                span.set_status(Status(StatusCode.OK))
            else:
                span.set_status(Status(StatusCode.OK))
        except Exception:  # a span is never worth a run
            pass


class TaskTracer:
    """One experiment's tracer (:class:`evalwire.tracing.Tracer`)."""

    def __init__(self, tracer: Any, span_name: str, started: Iterator[int]) -> None:
        self._tracer = tracer
        self.span_name = span_name
        self._started = started

    @contextmanager
    def task_span(self, example: Example, repetition: int) -> Iterator[_Span]:
        from opentelemetry.context import Context

        attributes: Mapping[str, Any] = {
            "openinference.span.kind": "CHAIN",
            "input.value": _json(example.input),
            "input.mime_type": "application/json",
            "evalwire.example_id": example.id,
            "evalwire.repetition": repetition,
        }
        next(self._started)
        # A fresh context: every run is a trace of its own, whatever span is current.
        with self._tracer.start_as_current_span(
            self.span_name,
            context=Context(),
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield _Span(span)

    def __reduce__(self) -> Any:
        # Spans are exported from this process only: shipped elsewhere, no tracer.
        return (_untraced, ())


def _untraced() -> None:
    return None


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)
