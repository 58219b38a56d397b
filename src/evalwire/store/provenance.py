"""Where an experiment's code came from: source hashes and the git commit.

Recorded with every experiment so two results can be told apart by what
changed (the task, an evaluator, the commit) and not only by when they ran.
Every function here answers ``None`` rather than fail: provenance is a
courtesy, never a reason to stop recording.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalwire.models import ExperimentSpec

GIT_TIMEOUT = 2.0


def source_hash(obj: Any, fallback: Path | None = None) -> str | None:
    """The sha1 of ``obj``'s source code, else of the file ``fallback``, else ``None``."""
    source = _source(obj)
    if source is not None:
        return hashlib.sha1(source.encode("utf-8")).hexdigest()
    if fallback is not None:
        try:
            return hashlib.sha1(fallback.read_bytes()).hexdigest()
        except OSError:
            return None
    return None


def _source(obj: Any) -> str | None:
    # Partials and callable objects have no source of their own: hash the
    # function or class that does the work.
    while isinstance(obj, functools.partial):
        obj = obj.func
    candidates = [obj]
    if not (inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj)):
        candidates.append(type(obj))
    for candidate in candidates:
        try:
            return inspect.getsource(candidate)
        except (OSError, TypeError):
            continue
    return None


def git_commit(folder: Path) -> str | None:
    """``git rev-parse HEAD`` in ``folder``, or ``None`` outside a checkout (or without git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def code_hashes(spec: ExperimentSpec) -> tuple[str | None, dict[str, str | None]]:
    """The task's and each evaluator's source hash, as the store records them."""
    folder = Path(spec.path) if spec.path is not None else None
    task_hash = source_hash(spec.task, folder / "task.py" if folder else None)
    evaluator_hashes = {
        name: source_hash(evaluator, folder / f"{name}.py" if folder else None)
        for name, evaluator in spec.evaluators.items()
    }
    return task_hash, evaluator_hashes
