"""Posting to a Phoenix experiment: creating it, its runs and their evaluations.

Shared by the recorder (:mod:`evalwire.phoenix.recorder`), which posts as an
experiment runs, and ``evalwire sync`` (:mod:`evalwire.phoenix.sync`), which
posts later what Phoenix lacks from a record of the embedded store. Both wrap
every request in :func:`retrying`: a request that fails for want of a
connection, a timeout, a 5xx or a 429 is tried again with exponential back-off
and jitter. A 409 for a run means Phoenix already holds it (an earlier attempt
got through): that is success.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from evalwire.phoenix.client import status_of

if TYPE_CHECKING:
    from evalwire.models import Evaluation, Run

__all__ = [
    "Poster",
    "Stopped",
    "create_experiment",
    "evaluation_args",
    "experiment_metadata",
    "retrying",
    "to_json",
]

_MAX_DELAY = 10.0
_ANNOTATOR_KINDS = ("CODE", "LLM", "HUMAN")
_EXISTING_RUN = re.compile(r"Experiment run (\S+) already exists")


class Stopped(Exception):
    """The caller is stopping (see :func:`retrying`): give up on this request."""


def experiment_metadata(
    dataset: str, metadata: Mapping[str, Any], params: Mapping[str, Any]
) -> Any:
    """The metadata a Phoenix experiment is created with."""
    return to_json({"dataset": dataset, "run_by": "evalwire", **metadata, **params})


def create_experiment(
    client: Any,
    *,
    dataset_id: str,
    version_id: str | None,
    name: str,
    metadata: Any,
    splits: Iterable[str] = (),
    repetitions: int = 1,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Create a Phoenix experiment on a dataset version; Phoenix's description of it
    (``id``, ``project_name``, ...)."""
    experiment = client.experiments.create(
        dataset_id=dataset_id,
        dataset_version_id=version_id,
        experiment_name=name,
        experiment_metadata=metadata,
        splits=list(splits) or None,
        repetitions=repetitions,
        timeout=timeout,
    )
    return dict(experiment)


@dataclass(frozen=True)
class Poster:
    """Posts runs and their evaluations to one Phoenix experiment.

    ``retry`` wraps every request (the recorder's retries stop when the
    session does; ``evalwire sync`` uses :func:`retrying`). A run Phoenix
    already holds (409) counts as posted: it is the one Phoenix names.
    Evaluations are upserted by Phoenix on (run, name), so posting one again
    replaces it rather than adding a second.
    """

    client: Any
    experiment_id: str
    timeout: float | None
    retry: Callable[[Callable[[], Any]], Any]

    def run(self, node_id: str, run: Run) -> str:
        """Post ``run`` against the dataset example ``node_id``; the run's Phoenix id."""
        result: str = self.retry(lambda: self._log_run(node_id, run))
        return result

    def evaluations(
        self,
        run_id: str,
        run: Run,
        only: Iterable[Evaluation] | None = None,
        *,
        on_error: Callable[[Evaluation, Exception], None],
    ) -> int:
        """Post the evaluations of ``run`` (or ``only`` those) that say something; how many."""
        ended = _utc(run.ended_at)
        posted = 0
        for evaluation in run.evaluations if only is None else only:
            args = evaluation_args(evaluation)
            if args is None:
                continue
            try:
                self.retry(
                    lambda args=args: self.client.experiments.log_evaluation(  # type: ignore[misc]
                        experiment_run_id=run_id,
                        start_time=ended,
                        end_time=ended,
                        timeout=self.timeout,
                        **args,
                    )
                )
            except Exception as exc:
                on_error(evaluation, exc)
                continue
            posted += 1
        return posted

    def _log_run(self, node_id: str, run: Run) -> str:
        try:
            posted = self.client.experiments.log_run(
                experiment_id=self.experiment_id,
                dataset_example_id=node_id,
                output=to_json(run.output),
                start_time=_utc(run.started_at),
                end_time=_utc(run.ended_at),
                repetition_number=run.repetition,
                trace_id=run.trace_id,
                error=run.error,
                timeout=self.timeout,
            )
        except Exception as exc:
            # 409: a successful run is already recorded (an earlier attempt of
            # ours whose answer was lost). Phoenix names it in the message.
            if status_of(exc) == 409:
                from evalwire.phoenix.client import detail_of

                match = _EXISTING_RUN.search(detail_of(exc))
                if match:
                    return match.group(1)
            raise
        return str(posted["id"])


def retrying(
    call: Callable[[], Any],
    *,
    attempts: int,
    backoff: float,
    stopping: threading.Event | None = None,
) -> Any:
    """``call()``, again after transient failures, with exponential back-off and jitter.

    With ``stopping``, gives up (raising :class:`Stopped`) once it is set.
    """
    from evalwire.phoenix.client import is_transient

    delay = backoff
    attempt = 1
    while True:
        if stopping is not None and stopping.is_set():
            raise Stopped()
        try:
            return call()
        except Exception as exc:
            if attempt >= attempts or not is_transient(exc):
                raise
        pause = min(_MAX_DELAY, delay) * random.uniform(0.5, 1.5)
        if stopping is None:
            time.sleep(pause)
        elif stopping.wait(pause):
            raise Stopped()
        delay *= 2
        attempt += 1


# -- what is posted -----------------------------------------------------------


def evaluation_args(evaluation: Evaluation) -> dict[str, Any] | None:
    """The ``log_evaluation`` arguments for an evaluation, or ``None`` if it says nothing."""
    score = evaluation.score
    label = evaluation.label
    if score is not None and not math.isfinite(score):
        label = label if label is not None else str(score)
        score = None
    if score is None and label is None and evaluation.explanation is None:
        if evaluation.error is None:
            return None
    kind = str(evaluation.annotator_kind).upper()
    return {
        "name": evaluation.name,
        "annotator_kind": kind if kind in _ANNOTATOR_KINDS else "CODE",
        "score": score,
        "label": label,
        "explanation": evaluation.explanation,
        "error": evaluation.error,
        "metadata": to_json(dict(evaluation.metadata)) or None,
    }


def to_json(value: Any, _depth: int = 0) -> Any:
    """``value`` as JSON can hold it: non-finite floats and unknown objects become strings."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if _depth > 50:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v, _depth + 1) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        try:
            return to_json(dump(mode="json"), _depth + 1)
        except Exception:
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(dataclasses.asdict(value), _depth + 1)
    return repr(value)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)
