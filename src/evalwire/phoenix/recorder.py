"""Recording experiments in Phoenix as they run.

When an experiment whose dataset came from Phoenix starts, the recorder
creates the Phoenix experiment (named ``result.experiment_name``, on the
version and splits the examples came from, with ``config.repetitions``); as
each run completes it posts the run and then its evaluations (a run's second
and later evaluations as jobs of their own, so they are posted at once). Every
request goes through a small pool of worker threads sharing one HTTP client
with a kept-alive connection per worker, so the reporting hook only queues
work and never waits for a round trip; runs that complete before the
experiment exists wait in memory and are queued when it does.

A request that fails for want of a connection, a timeout, a 5xx or a 429 is
tried again with exponential back-off and jitter. A 409 for a run means
Phoenix already holds it (an earlier attempt got through): that is success.
When the session ends the recorder waits, for at most ``drain_timeout``
seconds, for the queue to empty; then it prints each experiment's Phoenix
link, and how many runs and evaluations could not be posted, if any.

Settings (``[phoenix]``): ``workers`` (requests at once, default 8),
``attempts`` (per request, default 8), ``backoff`` (first delay in seconds,
default 0.5), ``drain_timeout`` (default 120), ``traces`` (task spans,
default true; see :mod:`evalwire.phoenix.traces`), ``trace_wait`` (default 10).

What Phoenix could not take stays in the embedded store, when it is on: the
recorder notes in ``result.extra`` where the experiment belongs
(``phoenix_dataset_id``, ``phoenix_dataset_version_id``, ``phoenix_splits``,
``phoenix_repetitions``, ``phoenix_server``, and once Phoenix made it,
``phoenix_experiment_id``, ``phoenix_url`` and ``phoenix_project_name``), the
store keeps that with the record, and ``evalwire sync``
(:mod:`evalwire.phoenix.sync`) later posts what Phoenix lacks through the
same :class:`~evalwire.phoenix.posting.Poster`.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from evalwire.phoenix.client import DEFAULT_WORKERS, describe

# The posting names are importable from here too, as they were before they moved.
from evalwire.phoenix.posting import (
    Poster,
    Stopped,
    create_experiment,
    evaluation_args,
    experiment_metadata,
    retrying,
    to_json,
)
from evalwire.phoenix.traces import TaskTracer, Traces

if TYPE_CHECKING:
    from evalwire.config import Config
    from evalwire.models import Evaluation, ExperimentResult, Run
    from evalwire.phoenix.client import Connection, Phoenix
    from evalwire.phoenix.loader import RemoteDataset
    from evalwire.session import Experiment

__all__ = [
    "Poster",
    "Recorder",
    "Recording",
    "create_experiment",
    "evaluation_args",
    "experiment_metadata",
    "retrying",
    "to_json",
]


@dataclass(eq=False)
class Recording:
    """One experiment as Phoenix is told about it (kept in ``experiment.stash``)."""

    recorder: Recorder
    name: str
    result: ExperimentResult
    remote: RemoteDataset
    experiment_id: str | None = None
    url: str | None = None
    project_name: str | None = None  # the Phoenix project its task spans go to
    state: str = "creating"  # then "created" or "failed"
    waiting: list[Run] = field(default_factory=list)
    runs: int = 0  # heard
    runs_posted: int = 0
    evaluations: int = 0  # heard, that have something to post
    evaluations_posted: int = 0
    error: str | None = None  # the first thing that went wrong
    poster: Poster | None = None  # once the experiment exists
    lock: threading.Lock = field(default_factory=threading.Lock)
    settled: threading.Event = field(default_factory=threading.Event)  # created, or failed to

    def add(self, run: Run) -> None:
        """A run completed: queue it, or keep it until the experiment exists."""
        postable = sum(1 for e in run.evaluations if evaluation_args(e) is not None)
        with self.lock:
            self.runs += 1
            self.evaluations += postable
            if self.state == "creating":
                self.waiting.append(run)
                return
            if self.state == "failed":
                return
        self.recorder.submit(self._post, run)

    def note(self, error: str) -> None:
        with self.lock:
            if self.error is None:
                self.error = error

    @property
    def lost_runs(self) -> int:
        return self.runs - self.runs_posted

    @property
    def lost_evaluations(self) -> int:
        return self.evaluations - self.evaluations_posted

    # -- requests (in worker threads) -------------------------------------------

    def _create(self) -> None:
        recorder, remote, result = self.recorder, self.remote, self.result
        client = recorder.connection.client
        metadata = experiment_metadata(result.dataset, result.metadata, result.params)
        try:
            created = recorder.retry(
                lambda: create_experiment(
                    client,
                    dataset_id=remote.id,
                    version_id=remote.version_id,
                    name=result.experiment_name,
                    metadata=metadata,
                    splits=remote.splits,
                    repetitions=recorder.repetitions,
                    timeout=recorder.timeout,
                )
            )
            self.experiment_id = str(created["id"])
            self.project_name = created.get("project_name")
            self.url = client.experiments.get_experiment_url(remote.id, self.experiment_id)
        except Exception as exc:
            self.note(f"the experiment could not be created: {recorder.describe(exc)}")
            with self.lock:
                self.state, self.waiting = "failed", []
            self.settled.set()
            return
        self.poster = Poster(client, self.experiment_id, recorder.timeout, recorder.retry)
        result.extra["phoenix_experiment_id"] = self.experiment_id
        result.extra["phoenix_url"] = self.url
        if self.project_name:
            result.extra["phoenix_project_name"] = self.project_name
        with self.lock:
            self.state, waiting, self.waiting = "created", self.waiting, []
        self.settled.set()
        for run in waiting:
            recorder.submit(self._post, run)

    def _post(self, run: Run) -> None:
        recorder = self.recorder
        node_id = self.remote.node_ids.get(run.example.id)
        if node_id is None:
            self.note(f"example {run.example.id} is not in the Phoenix dataset")
            return
        poster = self.poster
        assert poster is not None  # runs are posted once the experiment exists
        try:
            run_id = poster.run(node_id, run)
        except Exception as exc:
            self.note(recorder.describe(exc))
            return
        with self.lock:
            self.runs_posted += 1
        postable = [e for e in run.evaluations if evaluation_args(e) is not None]
        # The first evaluation in this job; any others each in a job of their
        # own, so several evaluators' results are posted side by side.
        for evaluation in postable[1:]:
            recorder.submit(self._post_evaluations, run_id, run, [evaluation])
        self._post_evaluations(run_id, run, postable[:1])

    def _post_evaluations(self, run_id: str, run: Run, evaluations: list[Evaluation]) -> None:
        recorder, poster = self.recorder, self.poster
        assert poster is not None

        def failed(evaluation: Evaluation, exc: Exception) -> None:
            self.note(f"evaluation '{evaluation.name}': {recorder.describe(exc)}")

        posted = poster.evaluations(run_id, run, evaluations, on_error=failed)
        with self.lock:
            self.evaluations_posted += posted


class Recorder:
    """Posts experiments, runs and evaluations to Phoenix from a pool of worker threads."""

    def __init__(self, phoenix: Phoenix, config: Config) -> None:
        table = config.section("phoenix")
        self.phoenix = phoenix
        self.repetitions = config.repetitions
        self.timeout = phoenix.target.timeout
        self.workers = max(1, int(table.get("workers", DEFAULT_WORKERS)))
        self.attempts = max(1, int(table.get("attempts", 8)))
        self.backoff = float(table.get("backoff", 0.5))
        self.drain_timeout = float(table.get("drain_timeout", 120.0))
        self.quiet = config.getoption("print_summary") is False
        self.traces: Traces | None = None
        if table.get("traces", True) and not config.getoption("no_traces"):
            self.traces = Traces(phoenix.connection, wait=float(table.get("trace_wait", 10.0)))
        self.sync_command = _sync_command(phoenix, config)
        self.recordings: list[Recording] = []
        self.unrecorded: list[str] = []  # experiments whose dataset another loader gave
        self._jobs: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()

    @property
    def connection(self) -> Connection:
        return self.phoenix.connection()

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, Stopped):
            return f"the session ended before Phoenix at {self.phoenix.connection().url} took them"
        return describe(exc, self.phoenix.connection())

    # -- the experiment's life ---------------------------------------------------

    def start(self, experiment: Experiment) -> Recording | None:
        """Start recording ``experiment``, if it runs, on a dataset that came from Phoenix."""
        dataset = experiment.dataset
        if dataset is None or experiment.result.status == "error":
            return None
        remote = self.phoenix.recall(dataset)
        if remote is None:
            # Another loader answered first: there is no Phoenix dataset to record against.
            self.unrecorded.append(experiment.name)
            return None
        result = experiment.result
        # Where this record belongs in Phoenix, for the store and `evalwire sync`.
        result.extra.update(
            phoenix_server=self.connection.url,
            phoenix_dataset_id=remote.id,
            phoenix_dataset_version_id=remote.version_id,
            phoenix_splits=list(remote.splits),
            phoenix_repetitions=self.repetitions,
        )
        recording = Recording(self, experiment.name, result, remote)
        self.recordings.append(recording)
        self.submit(recording._create)
        return recording

    def tracer(self, recording: Recording | None) -> TaskTracer | None:
        """A tracer for the recorded experiment's task spans, once Phoenix has created it."""
        if self.traces is None or recording is None:
            return None
        if not recording.settled.wait(self.traces.wait):
            self.traces.untraced.append(
                f"{recording.name}: Phoenix had not created the experiment "
                f"within {self.traces.wait:g} s"
            )
            return None
        if recording.state != "created":
            return None  # said already: its runs are not recorded either
        return self.traces.tracer(recording.name, recording.project_name)

    def finish(self, out: TextIO | None = None, err: TextIO | None = None) -> int:
        """Wait for the queue to drain (bounded), report, stop; 1 if anything was lost.

        Task spans that could not be sent are said, but do not change the status.
        """
        out = out or sys.stdout
        err = err or sys.stderr
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, self.drain_timeout)
        self.stop()
        status = 0
        if self.traces is not None:
            for line in self.traces.finish():
                err.write(f"phoenix: traces: {line}\n")
        for recording in self.recordings:
            if recording.url and not self.quiet:
                out.write(
                    f"phoenix: {recording.name}: {recording.runs_posted} run(s) recorded as "
                    f"{recording.result.experiment_name}: {recording.url}\n"
                )
            lost = _lost(recording)
            if lost:
                status = 1
                why = recording.error or (
                    f"Phoenix at {self.phoenix.connection().url} did not take them "
                    f"within {self.drain_timeout:g} s"
                )
                err.write(f"phoenix: {recording.name}: {lost} could not be posted: {why}\n")
                if self.sync_command:
                    err.write(
                        f"phoenix: {recording.name}: the store keeps them; "
                        f"`{self.sync_command} {recording.result.id[:12]}` posts them "
                        "once Phoenix answers\n"
                    )
        for name in self.unrecorded:
            err.write(
                f"phoenix: {name}: not recorded in Phoenix: its dataset came from another loader\n"
            )
        out.flush()
        err.flush()
        return status

    def stop(self) -> None:
        """Stop the workers; requests not yet made are dropped (and counted as lost)."""
        self._stopping.set()
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []

    # -- the pool ------------------------------------------------------------------

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        """Queue ``job(*args)`` for a worker thread; never blocks."""
        if self._stopping.is_set():
            return
        with self._idle:
            self._pending += 1
            if len(self._threads) < self.workers and len(self._threads) < self._pending:
                thread = threading.Thread(
                    target=self._work, name=f"evalwire-phoenix-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._jobs.put((job, args))

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, args = item
            try:
                if not self._stopping.is_set():
                    job(*args)
            except Exception as exc:  # a bug here must not kill the worker
                sys.stderr.write(f"phoenix: internal error: {type(exc).__name__}: {exc}\n")
            finally:
                with self._idle:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()

    def retry(self, call: Callable[[], Any]) -> Any:
        """``call()``, again after transient failures, until the session stops."""
        return retrying(call, attempts=self.attempts, backoff=self.backoff, stopping=self._stopping)


def _sync_command(phoenix: Phoenix, config: Config) -> str | None:
    """The ``evalwire sync`` command that would post what this session could not,
    or ``None`` when the store is not recording (nothing is kept to post later)."""
    import shlex

    # The store plugin keeps its session state under this key only when it records.
    store = config.stash.get("evalwire.store")
    if store is None:
        return None
    words = ["evalwire", "sync"]
    if phoenix.target.source == "--phoenix" and phoenix.target.url:
        words += ["--phoenix", phoenix.target.url]
    if config.options.get("store_path") and getattr(store, "path", None):
        words += ["--store", str(store.path)]
    return shlex.join(words)


def _lost(recording: Recording) -> str:
    parts = []
    if recording.lost_runs:
        parts.append(f"{recording.lost_runs} of {recording.runs} run(s)")
    if recording.lost_evaluations:
        parts.append(f"{recording.lost_evaluations} of {recording.evaluations} evaluation(s)")
    return " and ".join(parts)
