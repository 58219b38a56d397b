"""Results read back from a ``--json`` document, as the session reported them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalwire.models import Evaluation, Example, ExperimentResult, Run, ScoreSummary

__all__ = ["results_from_document"]


def results_from_document(document: Mapping[str, Any] | None) -> list[ExperimentResult]:
    if not document:
        return []
    return [_result(e) for e in document.get("experiments", ())]


def _result(data: Mapping[str, Any]) -> ExperimentResult:
    scores = {}
    for name, s in (data.get("scores") or {}).items():
        count = int(s.get("count") or 0)
        mean = s.get("mean")
        scores[name] = ScoreSummary(
            count=count,
            total=float(mean) * count if mean is not None else 0.0,
            errors=int(s.get("errors") or 0),
        )
    return ExperimentResult(
        id=data.get("id", ""),
        name=data["name"],
        experiment_name=data.get("experiment_name", ""),
        dataset=data.get("dataset", ""),
        dataset_version=data.get("dataset_version"),
        status=data.get("status", "passed"),
        error=data.get("error"),
        started_at=data.get("started_at") or 0.0,
        ended_at=data.get("ended_at") or 0.0,
        total=data.get("total"),
        completed=data.get("completed", 0),
        task_errors=data.get("task_errors", 0),
        scores=scores,
        runs=[_run(r) for r in data.get("runs") or ()],
        params=dict(data.get("params") or {}),
        metadata=dict(data.get("metadata") or {}),
        dry_run=bool(data.get("dry_run")),
    )


def _run(data: Mapping[str, Any]) -> Run:
    example = Example(
        id=str(data.get("example_id", "")),
        input=dict(data.get("input") or {}),
        expected=dict(data.get("expected") or {}),
        metadata=dict(data.get("metadata") or {}),
    )
    evaluations = tuple(
        Evaluation(
            name=e["name"],
            score=e.get("score"),
            label=e.get("label"),
            explanation=e.get("explanation"),
            metadata=dict(e.get("metadata") or {}),
            error=e.get("error"),
            annotator_kind=e.get("annotator_kind") or "CODE",
        )
        for e in data.get("evaluations") or ()
    )
    return Run(
        example=example,
        repetition=int(data.get("repetition", 1)),
        output=data.get("output"),
        error=data.get("error"),
        started_at=data.get("started_at") or 0.0,
        ended_at=data.get("ended_at") or 0.0,
        attempts=int(data.get("attempts", 1)),
        evaluations=evaluations,
        index=int(data.get("index", 0)),
    )
