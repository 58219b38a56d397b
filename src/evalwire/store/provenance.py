"""Where an experiment's code came from: source hashes and the git commit.

Recorded with every experiment so two results can be told apart by what
changed (the task, an evaluator, the commit) and not only by when they ran,
and so ``--resume`` continues a record only with the code that made it.

A callable defined in the experiment's folder is hashed with everything it
may depend on there: an evaluator file whole (its module-level constants
too), and the task's ``task.py`` whole together with the folder's other
files that are neither evaluator files nor the dataset (``_helpers.py``,
prompt templates, subfolders). A callable defined elsewhere (a library's
factory) is hashed by its source, plus the ``evalwire.toml`` entry it was
built from, if any, so changing an option counts as a change. Every function
here answers ``None`` rather than fail: provenance is a courtesy, never a
reason to stop recording.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire.named_evaluators import ENTRY_ATTRIBUTE

if TYPE_CHECKING:
    from evalwire.models import ExperimentSpec

GIT_TIMEOUT = 2.0


#: Files larger than this are hashed by size and time, not read.
_MAX_READ = 4 * 1024 * 1024
_DATASET_STEM = "dataset"
TASK_FILE = "task.py"


def source_hash(obj: Any, fallback: Path | None = None) -> str | None:
    """The sha1 of ``obj``'s source code, else of the file ``fallback``, else ``None``."""
    source = _source(obj)
    if source is not None:
        entry = getattr(obj, ENTRY_ATTRIBUTE, None)
        if isinstance(entry, str):
            source += "\0" + entry
        return hashlib.sha1(source.encode("utf-8")).hexdigest()
    if fallback is not None:
        try:
            return hashlib.sha1(fallback.read_bytes()).hexdigest()
        except OSError:
            return None
    return None


def _defined_in(obj: Any, folder: Path | None) -> Path | None:
    """The file in ``folder`` that defines ``obj``, or ``None`` (defined elsewhere, or unknown)."""
    if folder is None:
        return None
    for candidate in _code_objects(getattr(obj, "__wrapped__", obj)):
        try:
            found = inspect.getsourcefile(candidate)
            path = None if found is None else Path(found).resolve()
        except (OSError, TypeError):
            continue
        return path if path is not None and path.is_relative_to(folder) else None
    return None


def files_hash(files: list[Path], folder: Path) -> str | None:
    """The sha1 of ``files`` (paths relative to ``folder``, and contents), in that order."""
    digest = hashlib.sha1()
    try:
        for path in files:
            digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
            stat = path.stat()
            if stat.st_size > _MAX_READ:
                digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
            else:
                digest.update(path.read_bytes())
            digest.update(b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def _support_files(folder: Path, evaluator_files: set[Path]) -> list[Path]:
    """The folder's files the task may read or import: not evaluator files, not the dataset."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") or part == "__pycache__" for part in relative):
            continue
        if not path.is_file() or path in evaluator_files:
            continue
        if len(relative) == 1 and path.stem == _DATASET_STEM:
            continue  # the dataset has a version of its own
        found.append(path)
    return found


def _code_objects(obj: Any) -> list[Any]:
    """Where ``obj``'s code is, most specific first: partials and callable
    objects have no source of their own, the function or class doing the work has."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj):
        return [obj]
    return [obj, type(obj)]


def _source(obj: Any) -> str | None:
    for candidate in _code_objects(obj):
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
    """The task's and each evaluator's hash, as the store records them."""
    folder = Path(spec.path).resolve() if spec.path is not None else None
    evaluator_hashes: dict[str, str | None] = {}
    for name, evaluator in spec.evaluators.items():
        file = _defined_in(evaluator, folder)
        if folder is not None and file is not None:
            evaluator_hashes[name] = files_hash([file], folder)
        else:
            fallback = folder / f"{name}.py" if folder else None
            evaluator_hashes[name] = source_hash(evaluator, fallback)
    task_file = _defined_in(spec.task, folder)
    if folder is None or task_file is None:
        return source_hash(spec.task, folder / TASK_FILE if folder else None), evaluator_hashes
    # Evaluator files, as the `dirs` discoverer tells them: every other top-level
    # *.py but `_private.py` helpers.
    evaluator_files = {
        path
        for path in folder.glob("*.py")
        if path.name != TASK_FILE and not path.name.startswith("_")
    }
    support = [p for p in _support_files(folder, evaluator_files) if p != task_file]
    return files_hash([task_file, *support], folder), evaluator_hashes
