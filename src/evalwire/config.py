"""Settings: command line > config file > defaults, merged once per session.

The config file is ``evalwire.toml`` or the ``[tool.evalwire]`` table of
``pyproject.toml``, found in the current folder or the nearest parent holding
either; that folder is the project root. Relative paths in the file are
relative to it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalwire.errors import UsageError

if TYPE_CHECKING:
    from evalwire.plugins import Plugins

CONFIG_FILE = "evalwire.toml"


@dataclass
class Option:
    """One plugin option added through ``evalwire_addoption``."""

    decls: tuple[str, ...]
    attrs: dict[str, Any]

    @property
    def dest(self) -> str:
        dest = self.attrs.get("dest")
        if dest:
            return str(dest)
        longest = max(self.decls, key=len)
        return longest.lstrip("-").replace("-", "_")


class OptionParser:
    """Collects options plugins add to ``evalwire run`` (pytest's ``addoption``)."""

    def __init__(self) -> None:
        self.options: list[Option] = []

    def addoption(self, *decls: str, **attrs: Any) -> None:
        """Add an option; ``attrs`` are :func:`click.option`'s keyword arguments."""
        self.options.append(Option(decls, attrs))


@dataclass
class Config:
    """Everything a session needs to know, read by every stage.

    Plugins read their own options with :meth:`getoption` and their own
    config-file table with :meth:`section`, and may keep per-session state in
    ``stash``.
    """

    experiments_dir: Path = Path("experiments")
    names: tuple[str, ...] = ()
    dry_run: bool | int = False
    concurrency: int = 1
    task_concurrency: int = 10
    repetitions: int = 1
    retries: int = 3
    backoff: float = 1.0
    timeout: float | None = 60.0
    prefix: str = "eval"
    metadata: dict[str, Any] = field(default_factory=dict)
    executor: str = "threads"
    seed: int = 0
    rate_limit_errors: tuple[Any, ...] = ()
    verbosity: int = 0
    keep_runs: bool = False
    matrix: dict[str, list[Any]] | None = None
    arm_filter: dict[str, Any] | None = None
    repeats: int | None = None
    select: str | None = None
    select_mode: str | None = None
    resume: bool = False
    root: Path = field(default_factory=Path.cwd)
    config_path: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    stash: dict[str, Any] = field(default_factory=dict)
    plugins: Plugins | None = field(default=None, repr=False)

    def getoption(self, name: str, default: Any = None) -> Any:
        """A plugin option: command line, else the config file's top level, else ``default``."""
        value = self.options.get(name)
        if value is None:
            value = self.settings.get(name)
        return default if value is None else value

    def section(self, name: str) -> dict[str, Any]:
        """A table of the config file (``[phoenix]``, ``[dataset]``), or ``{}``."""
        value = self.settings.get(name, {})
        return value if isinstance(value, dict) else {}

    def experiment_settings(self, name: str) -> dict[str, Any]:
        """The ``[experiments.NAME]`` table for one experiment, or ``{}``."""
        table = self.section("experiments").get(name, {})
        return table if isinstance(table, dict) else {}

    def resolve(self, path: str | Path) -> Path:
        """A path from the config file or command line, relative to the project root."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def dry_run_size(self) -> int | None:
        """How many examples a dry run samples (``True`` means one), else ``None``."""
        if self.dry_run is True:
            return 1
        if self.dry_run is False or self.dry_run is None:
            return None
        return int(self.dry_run)


# The settings a config file may give at its top level, with the types they take.
_SETTINGS: dict[str, tuple[type, ...]] = {
    "experiments_dir": (str,),
    "dry_run": (bool, int),
    "concurrency": (int,),
    "task_concurrency": (int,),
    "repetitions": (int,),
    "retries": (int,),
    "backoff": (int, float),
    "timeout": (int, float),
    "prefix": (str,),
    "metadata": (dict,),
    "executor": (str,),
    "seed": (int,),
    "rate_limit_errors": (list,),
}
_POSITIVE = ("concurrency", "task_concurrency", "repetitions")
_CORE_FIELDS = {f.name for f in fields(Config)}


def find_config(start: Path) -> Path | None:
    """The nearest ``evalwire.toml``, or ``pyproject.toml`` with ``[tool.evalwire]``."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            if "[tool.evalwire" in pyproject.read_text(encoding="utf-8", errors="replace"):
                return pyproject
            # A pyproject without our table still marks the project root.
            return None
    return None


def project_root(start: Path) -> Path | None:
    """The nearest folder holding ``evalwire.toml`` or ``pyproject.toml``."""
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file() or (folder / "pyproject.toml").is_file():
            return folder
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """The evalwire settings in ``path``; a broken file is a :class:`UsageError`."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("evalwire", {})
    return data


def check_settings(settings: Mapping[str, Any], source: str) -> None:
    """Reject known settings of the wrong type, naming the file and the key."""
    for key, types in _SETTINGS.items():
        if key not in settings:
            continue
        value = settings[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            wanted = " or ".join(t.__name__ for t in types)
            raise UsageError(f"{source}: '{key}' must be {wanted}, not {value!r}")
        if key in _POSITIVE and value < 1:
            raise UsageError(f"{source}: '{key}' must be at least 1, not {value}")


def build_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_path: str | Path | None = None,
    cwd: Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> Config:
    """Merge defaults, the config file and ``overrides`` (``None`` values are unset).

    ``config_path`` names the config file explicitly; it must exist. Without
    it the nearest config file above ``cwd`` is used, if any.
    """
    cwd = (cwd or Path.cwd()).resolve()
    if config_path is not None:
        path: Path | None = Path(config_path)
        if not path.is_absolute():  # type: ignore[union-attr]
            path = cwd / path  # type: ignore[operator]
        if not path.is_file():  # type: ignore[union-attr]
            raise UsageError(f"config file {config_path} does not exist")
        root = path.parent  # type: ignore[union-attr]
    else:
        # The config that governs an experiments folder is the one above it.
        given_dir = (overrides or {}).get("experiments_dir")
        start = (cwd / given_dir).resolve() if given_dir is not None else cwd
        path = find_config(start)
        root = path.parent if path else (project_root(start) or cwd)
    settings = read_config_file(path) if path else {}
    check_settings(settings, str(path))

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(given) - _CORE_FIELDS
    if unknown:
        raise UsageError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    check_settings({k: v for k, v in given.items() if k in _SETTINGS}, "option")

    values: dict[str, Any] = {}
    for key in _SETTINGS:
        if key in settings:
            values[key] = settings[key]
    values.update(given)
    # Metadata merges key by key: the command line adds to the file's.
    if "metadata" in settings and "metadata" in given:
        values["metadata"] = {**settings["metadata"], **given["metadata"]}

    experiments_dir = values.pop("experiments_dir", "experiments")
    config = Config(
        **{k: v for k, v in values.items() if k not in ("rate_limit_errors",)},
        root=root,
        config_path=path,
        settings=dict(settings),
        options=dict(options or {}),
    )
    # From the command line a path is relative to where the user stands; from
    # the config file, to the file's folder.
    config.experiments_dir = (cwd if "experiments_dir" in given else root) / experiments_dir
    if "rate_limit_errors" in values:
        config.rate_limit_errors = tuple(values["rate_limit_errors"])
    if config.timeout is not None and config.timeout <= 0:
        config.timeout = None
    return config
