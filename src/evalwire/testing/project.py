"""A throwaway evalwire project for a test: experiments, datasets, ``evalwire.toml``."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["EvalwireProject", "locate"]

ECHO_TASK = """
def task(input):
    return input
"""

_CONFIG_PLACEHOLDER = "# evalwire settings for this test project (written by evalwire.testing)\n"


class EvalwireProject:
    """A throwaway evalwire project in a folder: experiments, datasets, ``evalwire.toml``.

    The folder always holds an ``evalwire.toml`` (a comment until
    :meth:`config` writes one), so it is the project root: whatever a run
    keeps in the project (the store's ``.evalwire/``) stays inside it. Every
    source string is dedented, so tests may indent it with the code around it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.experiments_dir = self.path / "experiments"
        self.experiments_dir.mkdir(parents=True, exist_ok=True)
        config = self.path / "evalwire.toml"
        if not config.exists():
            config.write_text(_CONFIG_PLACEHOLDER, encoding="utf-8")

    def __repr__(self) -> str:
        return f"<EvalwireProject {self.path}>"

    def __fspath__(self) -> str:
        return str(self.path)

    def experiment(
        self,
        name: str,
        task: str = ECHO_TASK,
        evaluators: Mapping[str, str] | None = None,
        rows: Sequence[Mapping[str, Any]] | None = None,
        *,
        dataset_location: str = "folder",
        files: Mapping[str, str] | None = None,
    ) -> Path:
        """Write experiment folder ``name`` and return it.

        ``task`` is the source of ``task.py`` (default: returns its input);
        ``evaluators`` maps a file stem to the source of that evaluator file;
        ``rows`` are the dataset's rows, ``{"input": ..., "expected": ...}``
        (``id`` and ``metadata`` optional), written as ``dataset.jsonl`` in the
        folder (``dataset_location="folder"``) or as ``datasets/NAME.jsonl``
        beside the experiments folder (``"datasets"``); ``None`` writes no
        dataset. ``files`` are other files to write, by path relative to the
        folder (helpers: ``{"_helpers.py": "..."}``).
        """
        if dataset_location not in ("folder", "datasets"):
            raise ValueError(
                f"dataset_location must be 'folder' or 'datasets', not {dataset_location!r}"
            )
        folder = self.experiments_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        self.write(folder / "task.py", task)
        for stem, source in (evaluators or {}).items():
            self.write(folder / f"{stem}.py", source)
        for relative, source in (files or {}).items():
            self.write(folder / relative, source)
        if rows is not None:
            if dataset_location == "folder":
                _write_jsonl(folder / "dataset.jsonl", rows)
            else:
                self.dataset(name, rows)
        return folder

    def dataset(self, name: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        """Write ``datasets/NAME.jsonl`` beside the experiments folder and return it."""
        return _write_jsonl(self.path / "datasets" / f"{name}.jsonl", rows)

    def config(self, toml_text: str) -> Path:
        """Write ``evalwire.toml`` (replacing the one there) and return its path."""
        return self.write(self.path / "evalwire.toml", toml_text)

    def write(self, path: str | os.PathLike[str], source: str) -> Path:
        """Write dedented ``source`` to ``path`` (relative to the project), creating folders."""
        target = Path(path)
        if not target.is_absolute():
            target = self.path / target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
        return target


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    for number, row in enumerate(rows, 1):
        if not isinstance(row, Mapping) or "input" not in row:
            raise ValueError(
                f"dataset row {number} must be a mapping with an 'input' key "
                f"(and optionally 'expected', 'id', 'metadata'), not {row!r}"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(dict(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def locate(target: EvalwireProject | str | os.PathLike[str]) -> tuple[Path, Path]:
    """(experiments folder, folder to run in) for a project or an experiments folder."""
    if isinstance(target, EvalwireProject):
        return target.experiments_dir, target.path
    folder = Path(target).resolve()
    return folder, folder.parent
