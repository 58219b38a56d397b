"""Loading plugins, and the typed face of the hooks the core calls.

Entry points in the ``evalwire`` group are loaded once, evalwire's own
defaults among them; ``-p no:NAME`` blocks one before it is imported,
``-p module.path`` adds a module, ``EVALWIRE_DISABLE_PLUGIN_AUTOLOAD=1`` keeps
every other distribution's plugins out, and ``EVALWIRE_TRACE_PLUGINS=1``
traces hook calls to stderr.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from evalwire import hookspecs
from evalwire.errors import PluginError

if TYPE_CHECKING:
    import click

    from evalwire.config import Config, OptionParser
    from evalwire.executor import Executor
    from evalwire.models import Dataset, ExperimentResult, ExperimentSpec, Resume, Run
    from evalwire.session import Experiment, Session
    from evalwire.tracing import Tracer

GROUP = "evalwire"
DISTRIBUTION = "evalwire"

hookimpl = pluggy.HookimplMarker("evalwire")


@dataclass(frozen=True)
class PluginInfo:
    """What ``evalwire plugins`` shows about one registered plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...] = field(default=())


@functools.cache
def _entry_points() -> tuple[Any, ...]:
    """The ``evalwire`` entry points, read once per process (a scan of every distribution)."""
    if sys.version_info >= (3, 12):
        from importlib.metadata import entry_points
    else:
        from importlib_metadata import entry_points
    return tuple(entry_points(group=GROUP))


def parse_plugin_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``-p`` values into (blocked names, module paths to load)."""
    blocked: list[str] = []
    modules: list[str] = []
    for arg in args:
        if arg.startswith("no:"):
            blocked.append(arg[3:])
        else:
            modules.append(arg)
    return blocked, modules


class _Manager(pluggy.PluginManager):
    """Accepts unmarked ``evalwire_*`` functions as hook implementations, as pytest does.

    A plugin author who forgets ``@hookimpl`` would otherwise see the hook
    silently never called.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("evalwire_"):
            if callable(getattr(plugin, name, None)):
                return {}
        return opts


class Plugins:
    """The plugin manager, with one method per hook the core calls.

    Reporting hooks are serialized by a lock: experiments run in several
    threads, and a reporter should not have to be thread-safe.
    """

    def __init__(self) -> None:
        self.pm = _Manager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._dists: dict[str, tuple[str | None, str | None]] = {}
        self._entry_dists: dict[str, Any] = {}
        self._report_lock = threading.RLock()
        self._listener_cache: dict[str, list[tuple[str, Any, tuple[str, ...]]]] = {}
        self._tracing = False
        self.reporter_failures: set[tuple[str, str]] = set()

    # -- loading ---------------------------------------------------------------

    @classmethod
    def load(
        cls,
        plugin_args: Sequence[str] = (),
        *,
        extra: Iterable[tuple[str, object]] = (),
        autoload: bool | None = None,
    ) -> Plugins:
        """Build the manager: entry points (unless blocked), ``-p`` modules, ``extra``."""
        plugins = cls()
        blocked, modules = parse_plugin_args(plugin_args)
        for name in blocked:
            plugins.pm.set_blocked(name)
        if autoload is None:
            autoload = not os.environ.get("EVALWIRE_DISABLE_PLUGIN_AUTOLOAD")
        plugins._load_entry_points(autoload)
        for module in modules:
            plugins._load_module(module)
        for name, obj in extra:
            if not plugins.pm.is_registered(obj):  # an installed plugin passed again
                plugins.register(obj, name)
        plugins.check()
        if os.environ.get("EVALWIRE_TRACE_PLUGINS"):
            plugins.enable_tracing()
        return plugins

    def _load_entry_points(self, autoload: bool) -> None:
        for ep in _entry_points():
            if self.pm.is_blocked(ep.name) or self.pm.has_plugin(ep.name):
                continue
            # Reading a distribution's metadata parses its METADATA file: do it
            # only for the listing, or when a plugin fails and must be named.
            dist = getattr(ep, "dist", None)
            if not autoload and _dist_name(dist) != DISTRIBUTION:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                dist_name = dist.metadata["Name"] if dist is not None else None
                raise PluginError(
                    f"plugin '{ep.name}' (from distribution {dist_name or 'unknown'}) "
                    f"failed to import: {type(exc).__name__}: {exc}. "
                    f"Fix or uninstall it, or block it with -p no:{ep.name}"
                ) from exc
            self.register(plugin, ep.name)
            self._entry_dists[ep.name] = dist

    def _load_module(self, path: str) -> None:
        if self.pm.is_blocked(path) or self.pm.has_plugin(path):
            return
        try:
            module = importlib.import_module(path)
        except Exception as exc:
            raise PluginError(
                f"plugin module '{path}' (given with -p) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not self.pm.is_registered(module):  # already loaded through its entry point
            self.register(module, path)

    def register(
        self,
        plugin: object,
        name: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        """Register a plugin object; unknown hooks are an error naming the plugin."""
        try:
            registered = self.pm.register(plugin, name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin '{name}'{_from(distribution)} does not fit evalwire's hooks: {exc}"
            ) from exc
        except ValueError as exc:
            raise PluginError(f"plugin '{name}' cannot be registered: {exc}") from exc
        if registered is not None:
            self._dists[registered] = (distribution, version)
        self._listener_cache.clear()

    def check(self) -> None:
        """Fail with a :class:`PluginError` if a plugin implements a hook evalwire lacks."""
        for hook_name in list(vars(self.pm.hook)):
            hook = getattr(self.pm.hook, hook_name)
            if hook_name.startswith("_") or hook.has_spec():
                continue
            for impl in hook.get_hookimpls():
                if impl.optionalhook:
                    continue
                import difflib  # only to name the hook a plugin probably meant

                name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
                close = difflib.get_close_matches(hook_name, _hook_names(), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise PluginError(
                    f"plugin '{name}'{_from(self._distribution(name)[0])} "
                    f"implements unknown hook '{hook_name}'{hint}; evalwire's hooks are "
                    "listed in evalwire.hookspecs"
                )

    def enable_tracing(self) -> None:
        """Write every hook call and its result to stderr."""
        self.pm.trace.root.setwriter(sys.stderr.write)
        self.pm.enable_tracing()
        self._tracing = True

    # -- introspection ---------------------------------------------------------

    def infos(self) -> list[PluginInfo]:
        """Every registered plugin, in registration order."""
        result: list[PluginInfo] = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
            dist, version = self._distribution(name)
            result.append(PluginInfo(name, dist, version, hooks))
        return result

    def _distribution(self, name: str) -> tuple[str | None, str | None]:
        entry_dist = self._entry_dists.get(name)
        if entry_dist is not None:
            return entry_dist.metadata["Name"], entry_dist.version
        return self._dists.get(name, (None, None))

    def has(self, name: str) -> bool:
        return self.pm.has_plugin(name)

    # -- set-up hooks ----------------------------------------------------------

    def addoption(self, parser: OptionParser) -> None:
        self.pm.hook.evalwire_addoption(parser=parser)

    def register_commands(self, cli: click.Group) -> None:
        self.pm.hook.evalwire_register_commands(cli=cli)

    def configure(self, config: Config) -> None:
        self.pm.hook.evalwire_configure(config=config)

    def evaluator_factories(self) -> dict[str, Any]:
        """Every evaluator factory plugins offer to the config file, by name."""
        factories: dict[str, Any] = {}
        self.pm.hook.evalwire_register_evaluators(register=factories.setdefault)
        return factories

    # -- stages ----------------------------------------------------------------

    def discover(self, config: Config) -> list[ExperimentSpec]:
        specs: list[ExperimentSpec] = []
        seen: set[str] = set()
        # pluggy calls the last registered first; built-ins are trylast.
        for found in self.pm.hook.evalwire_discover(config=config):
            for spec in found or ():
                if spec.name not in seen:
                    seen.add(spec.name)
                    specs.append(spec)
        return specs

    def load_dataset(self, spec: ExperimentSpec, config: Config) -> Dataset | None:
        result: Dataset | None = self.pm.hook.evalwire_load_dataset(spec=spec, config=config)
        return result

    def describe_search(self, spec: ExperimentSpec, config: Config) -> list[str]:
        answers = self.pm.hook.evalwire_describe_search(spec=spec, config=config)
        return [a for a in answers if a]

    def resume(self, experiment: Experiment, config: Config) -> Resume | None:
        result: Resume | None = self.pm.hook.evalwire_resume(experiment=experiment, config=config)
        return result

    def adapt_task(self, task: Any, spec: ExperimentSpec, config: Config) -> Any:
        return self.pm.hook.evalwire_adapt_task(task=task, spec=spec, config=config)

    def adapt_evaluator(
        self, evaluator: Any, name: str, spec: ExperimentSpec, config: Config
    ) -> Any:
        return self.pm.hook.evalwire_adapt_evaluator(
            evaluator=evaluator, name=name, spec=spec, config=config
        )

    def make_executor(self, config: Config) -> Executor | None:
        result: Executor | None = self.pm.hook.evalwire_make_executor(config=config)
        return result

    def make_tracer(self, experiment: Experiment) -> Tracer | None:
        result: Tracer | None = self.pm.hook.evalwire_make_tracer(experiment=experiment)
        return result

    # -- reporters -------------------------------------------------------------
    # Each reporter is called on its own: one that raises is named once on
    # stderr and the others still hear every event, so a buggy reporter cannot
    # cost the user the results the store or another reporter would keep.

    def _listeners(self, hook_name: str) -> list[tuple[str, Any, tuple[str, ...]]]:
        listeners = self._listener_cache.get(hook_name)
        if listeners is None:
            impls = getattr(self.pm.hook, hook_name).get_hookimpls()
            listeners = [  # pluggy's order: tryfirst, then last registered first
                (impl.plugin_name, impl.function, tuple(impl.argnames)) for impl in reversed(impls)
            ]
            self._listener_cache[hook_name] = listeners
        return listeners

    def _report(self, hook_name: str, **kwargs: Any) -> list[Any]:
        answers = []
        with self._report_lock:
            for plugin_name, function, argnames in self._listeners(hook_name):
                if self._tracing:
                    sys.stderr.write(f"{hook_name} [{plugin_name}]\n")
                try:
                    answers.append(function(*[kwargs[a] for a in argnames]))
                except Exception as exc:
                    self._reporter_failed(plugin_name, hook_name, exc)
        return answers

    def _reporter_failed(self, plugin_name: str, hook_name: str, exc: Exception) -> None:
        if (plugin_name, hook_name) not in self.reporter_failures:
            sys.stderr.write(
                f"evalwire: plugin '{plugin_name}' failed in {hook_name}: "
                f"{type(exc).__name__}: {exc}\n"
            )
        self.reporter_failures.add((plugin_name, hook_name))

    def session_start(self, session: Session) -> None:
        self._report("evalwire_session_start", session=session)

    def experiment_start(self, experiment: Experiment) -> None:
        self._report("evalwire_experiment_start", experiment=experiment)

    def run_complete(self, experiment: Experiment, run: Run) -> None:
        self._report("evalwire_run_complete", experiment=experiment, run=run)

    def experiment_finish(self, experiment: Experiment, result: ExperimentResult) -> None:
        self._report("evalwire_experiment_finish", experiment=experiment, result=result)

    def session_finish(
        self, session: Session, results: list[ExperimentResult], exitstatus: int
    ) -> int:
        answers = self._report(
            "evalwire_session_finish", session=session, results=results, exitstatus=exitstatus
        )
        failed = 1 if self.reporter_failures else 0
        return max([exitstatus, failed, *(a for a in answers if isinstance(a, int))])


def _dist_name(dist: Any) -> str | None:
    """A distribution's normalized name, without parsing its METADATA when it can.

    The name of the ``.dist-info`` folder (``evalwire-1.0.dist-info``) gives it;
    ``importlib.metadata`` and its backport compute it from there as
    ``_normalized_name``. Anything else falls back to the metadata's ``Name``.
    """
    if dist is None:
        return None
    normalized = getattr(dist, "_normalized_name", None)
    return str(normalized) if normalized is not None else str(dist.metadata["Name"])


def _hook_names() -> list[str]:
    return [name for name in vars(hookspecs) if name.startswith("evalwire_")]


def _from(distribution: str | None) -> str:
    return f" (from distribution {distribution})" if distribution else ""
