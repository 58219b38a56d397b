"""The Python API: ``ExperimentRunner``, upstream evalwire's entry point, done over."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from evalwire.config import build_config
from evalwire.errors import ExperimentsFailed
from evalwire.models import ExperimentResult
from evalwire.plugins import Plugins
from evalwire.session import Session
from evalwire.sweeps import SweepSummary


class Results(list[ExperimentResult]):
    """The experiments' results, and ``sweeps``: per swept experiment, its arms and pick."""

    sweeps: list[SweepSummary]


class ExperimentRunner:
    """Discover, load and run every experiment under ``experiments_dir``.

    Settings left as ``None`` come from ``evalwire.toml`` (or
    ``[tool.evalwire]``) and then the defaults. ``plugins`` are extra plugin
    objects to register, as ``(name, plugin)`` pairs or bare objects;
    ``plugin_args`` are ``-p`` values (``"no:console"``). Extra keyword
    ``options`` are plugin options, as ``config.getoption`` returns them.
    """

    def __init__(
        self,
        experiments_dir: Path | str,
        phoenix_client: Any = None,
        *,
        concurrency: int = 1,
        dry_run: bool | int = False,
        task_concurrency: int | None = None,
        repetitions: int | None = None,
        retries: int | None = None,
        timeout: float | None = None,
        seed: int | None = None,
        matrix: dict[str, list[Any]] | None = None,
        arm_filter: dict[str, Any] | None = None,
        repeats: int | None = None,
        select: str | None = None,
        select_mode: str | None = None,
        executor: str | None = None,
        resume: bool | None = None,
        rate_limit_errors: Sequence[Any] | None = None,
        config_path: Path | str | None = None,
        plugins: Iterable[Any] = (),
        plugin_args: Sequence[str] = (),
        print_summary: bool = True,
        **options: Any,
    ) -> None:
        self.experiments_dir = Path(experiments_dir)
        self.client = phoenix_client
        self.settings: dict[str, Any] = {
            "experiments_dir": str(self.experiments_dir),
            "concurrency": concurrency,
            "dry_run": dry_run or None,
            "task_concurrency": task_concurrency,
            "repetitions": repetitions,
            "retries": retries,
            "timeout": timeout,
            "seed": seed,
            "matrix": matrix,
            "arm_filter": arm_filter,
            "repeats": repeats,
            "select": select,
            "select_mode": select_mode,
            "executor": executor,
            "resume": resume,
            "rate_limit_errors": tuple(rate_limit_errors) if rate_limit_errors else None,
        }
        self.config_path = config_path
        self.extra = [p if isinstance(p, tuple) else (None, p) for p in plugins]
        self.plugin_args = list(plugin_args)
        self.options = {"phoenix_client": phoenix_client, "print_summary": print_summary, **options}

    def run(
        self,
        names: Sequence[str] | None = None,
        *,
        experiment_name_prefix: str = "eval",
        metadata: dict[str, Any] | None = None,
    ) -> Results:
        """Run the experiments (all, or those in ``names``) and return their results.

        Sweeps (``[experiments.NAME.matrix]``, ``repeats``) give one result per
        arm and replicate; ``results.sweeps`` summarizes the arms and the pick.

        Raises :class:`evalwire.errors.ExperimentsFailed` (a ``SystemExit``
        with code 1 carrying ``results``) after every experiment finished, if
        any failed; :class:`evalwire.errors.UsageError` for bad settings.
        """
        config = build_config(
            {
                **self.settings,
                "names": tuple(names) if names else None,
                "prefix": experiment_name_prefix,
                "metadata": metadata,
                "keep_runs": True,
            },
            config_path=self.config_path,
            options=self.options,
        )
        plugins = Plugins.load(self.plugin_args, extra=self.extra)
        session = Session(config, plugins)
        results = Results(session.run())
        results.sweeps = session.sweep_summaries
        if session.exitstatus:
            raise ExperimentsFailed(results, session.exitstatus)
        return results
