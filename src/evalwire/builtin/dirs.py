"""The ``dirs`` discoverer: every folder holding ``task.py`` is an experiment.

``task.py`` defines ``task``; every other ``*.py`` file in the folder (except
``_private.py`` helpers) is an evaluator file defining a callable named after
the file. The experiment's name is the folder's name, and unless
``[experiments.NAME] dataset`` says otherwise, so is its dataset's.

Modules are imported under a private package name per experiment folder, so
relative imports work; no ``__init__.py`` or bytecode is written into the
user's tree, and ``sys.path`` and ``sys.modules`` are restored afterwards (the
experiment's own modules do not linger in ``sys.modules``).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

from evalwire.config import Config
from evalwire.errors import UsageError
from evalwire.models import ExperimentSpec
from evalwire.plugins import hookimpl

TASK_FILE = "task.py"


@hookimpl(trylast=True)
def evalwire_discover(config: Config) -> list[ExperimentSpec]:
    root = config.experiments_dir
    if not root.is_dir():
        raise UsageError(
            f"experiments folder {root} does not exist "
            "(give one with --experiments DIR or `experiments_dir` in evalwire.toml)"
        )
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and (p / TASK_FILE).is_file()]
    return [load_experiment(folder, config) for folder in folders]


def load_experiment(folder: Path, config: Config) -> ExperimentSpec:
    """Import one experiment folder; an import failure becomes the spec's ``error``."""
    name = folder.name
    settings = config.experiment_settings(name)
    base = dict(
        name=name,
        dataset=settings.get("dataset"),
        metadata=dict(settings.get("metadata", {})),
        path=folder,
    )
    try:
        task_module, evaluators = _import_folder(folder)
    except _LoadError as exc:
        return ExperimentSpec(task=None, error=f"experiment '{name}': {exc}", **base)
    params = dict(getattr(task_module, "params", None) or {})
    params.update(settings.get("params", {}))
    return ExperimentSpec(task=task_module.task, evaluators=evaluators, params=params, **base)


class _LoadError(Exception):
    pass


def _import_folder(folder: Path) -> tuple[types.ModuleType, dict[str, Any]]:
    import hashlib  # here, not at import: loading OpenSSL's hashes costs every command ~3 ms

    package = "_evalwire_exp_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    saved_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    pkg = types.ModuleType(package)
    pkg.__path__ = [str(folder)]
    pkg.__file__ = None
    sys.modules[package] = pkg
    # The folder on sys.path lets `import helpers` work as it does when the
    # user runs task.py by hand.
    sys.path.insert(0, str(folder))
    try:
        task_module = _import_file(package, folder / TASK_FILE)
        # Whether a task is callable is the adapters' business: a plugin may
        # accept a compiled graph or any other object.
        if getattr(task_module, "task", None) is None:
            raise _LoadError(f"{folder / TASK_FILE} defines no 'task'")
        evaluators: dict[str, Any] = {}
        for path in sorted(folder.glob("*.py")):
            if path.name == TASK_FILE or path.name.startswith("_"):
                continue
            module = _import_file(package, path)
            evaluator = getattr(module, path.stem, None)
            if not callable(evaluator):
                raise _LoadError(
                    f"evaluator file {path} defines no callable named '{path.stem}' "
                    f"(name helper modules with a leading underscore, e.g. _{path.name})"
                )
            evaluators[path.stem] = evaluator
        return task_module, evaluators
    finally:
        sys.path[:] = saved_path
        sys.dont_write_bytecode = saved_bytecode
        for mod_name in set(sys.modules) - saved_modules:
            module = sys.modules[mod_name]
            file = getattr(module, "__file__", None)
            if (
                mod_name == package
                or mod_name.startswith(package + ".")
                or (file and Path(file).resolve().is_relative_to(folder.resolve()))
            ):
                del sys.modules[mod_name]


def _import_file(package: str, path: Path) -> types.ModuleType:
    name = f"{package}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise _LoadError(f"{path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _LoadError(f"{path} failed to import: {_where(exc, path)}") from exc
    return module


def _where(exc: BaseException, path: Path) -> str:
    """The exception, with the line of the user's file it came from."""
    import traceback

    line = None
    if isinstance(exc, SyntaxError) and exc.lineno:
        line = exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename) == path:
                line = frame.lineno
    where = f" (line {line})" if line else ""
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return f"{type(exc).__name__}: {message}{where}"
