"""Evaluators named in ``evalwire.toml`` instead of written as Python files.

``[experiments.NAME] evaluators = ["exact_match", {name = "top5", use = "top_k", K = 5}]``
builds each entry from a factory that a plugin registered under that name
(``evalwire_register_evaluators``) and adds it to the experiment.

A factory that takes other evaluators (its ``evaluators`` option: ``weighted``,
``all_pass``, ``any_pass``, or a plugin's) gets them by name::

    {name = "strict", use = "all_pass", evaluators = ["exact_match", "json_match"]}
    {name = "overall", use = "weighted", evaluators = {exact_match = 0.7, contains = 0.3}}

A list becomes a list of evaluators; a table ``{child = weight}`` becomes
``(evaluator, weight)`` pairs, and a child that needs options is a table
there too: ``loose = {weight = 0.3, use = "exact_match", case_sensitive = false}``.
A child written as a name is, in this order, another evaluator of the same
experiment (an entry of this list, then an evaluator file), else a
registered factory called with no options. A child written as a table is
built from its factory for the composite alone. Only the experiment's own
evaluators also score on their own; the composite calls the same function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

from evalwire.binding import is_async
from evalwire.errors import UsageError
from evalwire.models import ExperimentSpec

#: The factory option through which a composite takes its children.
CHILDREN = "evaluators"
#: The attribute a built evaluator carries its entry in (as JSON), so the store's
#: provenance hash changes with the entry's options, not only with the factory's code.
ENTRY_ATTRIBUTE = "__evalwire_entry__"


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: entries are told apart by identity
class _Entry:
    """One evaluator described in the config file, not built yet."""

    here: str  # where it is written, for messages
    name: str
    use: str
    options: dict[str, Any]


def build_named(
    entries: Any,
    factories: Mapping[str, Callable[..., Any]],
    where: str,
    experiment_evaluators: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The evaluators ``entries`` describe, by name; a bad entry is a :class:`UsageError`.

    ``experiment_evaluators`` are the experiment's other evaluators (its
    evaluator files), which a composite's children may name.
    """
    if not isinstance(entries, list):
        raise UsageError(f"{where}: 'evaluators' must be a list, not {entries!r}")
    parsed = [_entry(entry, f"{where}.evaluators[{i}]") for i, entry in enumerate(entries)]
    builder = _Builder(parsed, experiment_evaluators or {}, factories)
    return {entry.name: builder.entry(entry) for entry in parsed}


def with_named_evaluators(
    spec: ExperimentSpec, settings: Mapping[str, Any], factories: Mapping[str, Callable[..., Any]]
) -> ExperimentSpec:
    """``spec`` with the evaluators its ``[experiments.NAME]`` table names added."""
    entries = settings.get("evaluators")
    if entries is None:
        return spec
    named = build_named(entries, factories, f"[experiments.{spec.name}]", spec.evaluators)
    return dataclasses.replace(spec, evaluators={**spec.evaluators, **named})


def _entry(entry: Any, here: str) -> _Entry:
    """A list item, ``"name"`` or ``{name = ..., use = ..., ...options}``, read but not built."""
    if isinstance(entry, str):
        return _Entry(here, entry, entry, {})
    if isinstance(entry, dict):
        options = dict(entry)
        use = options.pop("use", None) or options.get("name")
        name = options.pop("name", None) or use
        if isinstance(use, str) and isinstance(name, str):
            return _Entry(here, name, use, options)
        raise UsageError(f"{here}: give 'use' (a factory name) and optionally 'name'")
    raise UsageError(f"{here}: expected a name or a table, not {entry!r}")


class _Builder:
    """Builds entries on demand, so a composite may name an entry written after it."""

    def __init__(
        self,
        entries: list[_Entry],
        files: Mapping[str, Any],
        factories: Mapping[str, Callable[..., Any]],
    ) -> None:
        # A name written twice means the last entry, as in the experiment's evaluators.
        self.entries = {entry.name: entry for entry in entries}
        self.files = files
        self.factories = factories
        self.built: dict[_Entry, Any] = {}
        self.building: list[_Entry] = []  # the chain of entries under construction

    def entry(self, entry: _Entry) -> Any:
        """The evaluator ``entry`` describes, built once."""
        if entry in self.built:
            return self.built[entry]
        if entry in self.building:
            chain = [e.name for e in self.building[self.building.index(entry) :]]
            raise UsageError(
                f"{entry.here} ('{entry.name}'): a composite cannot contain itself: "
                f"{' -> '.join([*chain, entry.name])}"
            )
        self.building.append(entry)
        try:
            evaluator = self.make(entry.here, entry.name, entry.use, entry.options)
        finally:
            self.building.pop()
        _note_entry(evaluator, entry)
        self.built[entry] = evaluator
        return evaluator

    def make(self, here: str, name: str, use: str, options: Mapping[str, Any]) -> Any:
        """``factories[use](**options)``, with a composite's children resolved first."""
        factory = self.factories.get(use)
        if factory is None:
            raise UsageError(
                f"{here}: unknown evaluator '{use}'; known: {', '.join(sorted(self.factories))}"
            )
        arguments = dict(options)
        if CHILDREN in arguments:
            arguments[CHILDREN] = self.children(arguments[CHILDREN], f"{here} ('{name}')")
        try:
            return factory(**arguments)
        except Exception as exc:  # a bad option: say which entry, not a traceback
            raise UsageError(f"{here} ('{name}'): {type(exc).__name__}: {exc}") from None

    def children(self, value: Any, owner: str) -> Any:
        """A list of children as evaluators; a table ``{child = weight}`` as pairs."""
        if isinstance(value, list):
            return [self.child(item, f"{owner}.{CHILDREN}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, dict):
            return [self.weighted(key, item, owner) for key, item in value.items()]
        raise UsageError(
            f"{owner}: '{CHILDREN}' must be a list of evaluators or a table "
            f"{{ name = weight }}, not {value!r}"
        )

    def child(self, item: Any, here: str) -> Any:
        """One child of a list: a name, or a table built for the composite alone."""
        if isinstance(item, str):
            return self.named(item, here)
        entry = _entry(item, here)
        return _renamed(self.make(here, entry.name, entry.use, entry.options), entry.name)

    def weighted(self, key: str, item: Any, owner: str) -> tuple[Any, Any]:
        """One child of a table, with its weight (checked by the factory)."""
        here = f"{owner}.{CHILDREN}.{key}"
        if not isinstance(item, dict):
            return self.named(key, here), item
        options = dict(item)
        if "weight" not in options:
            raise UsageError(f"{here}: give '{key}' a weight: {key} = {{ weight = 1, ... }}")
        if "name" in options:
            raise UsageError(f"{here}: the key '{key}' is the child's name; drop 'name'")
        weight = options.pop("weight")
        if not options:  # only a weight: the same as `key = weight`
            return self.named(key, here), weight
        use = options.pop("use", key)
        return _renamed(self.make(here, key, use, options), key), weight

    def named(self, name: str, here: str) -> Any:
        """The child called ``name``: the experiment's evaluator, else a bare factory."""
        if name in self.entries:
            evaluator = self.entry(self.entries[name])
        elif name in self.files:
            evaluator = self.files[name]
        elif name in self.factories:
            evaluator = self.make(here, name, name, {})
        else:
            own = sorted({*self.entries, *self.files})
            raise UsageError(
                f"{here}: unknown evaluator '{name}'; this experiment's evaluators: "
                f"{', '.join(own) or 'none'}; registered: {', '.join(sorted(self.factories))}"
            )
        return _renamed(evaluator, name)


def _note_entry(evaluator: Any, entry: _Entry) -> None:
    """Mark ``evaluator`` with the entry it was built from (when it takes attributes)."""
    import json

    described = json.dumps({"use": entry.use, **entry.options}, sort_keys=True, default=repr)
    with contextlib.suppress(AttributeError, TypeError):
        setattr(evaluator, ENTRY_ATTRIBUTE, described)


def _renamed(evaluator: Any, name: str) -> Any:
    """``evaluator`` under ``name``, which a composite reports its child's score by.

    A wrapper, so the user's own function is not changed; it keeps the
    signature (evalwire binds by parameter name) and is async exactly when
    ``evaluator`` is.
    """
    if not callable(evaluator) or getattr(evaluator, "__name__", None) == name:
        return evaluator
    if is_async(evaluator):

        async def renamed_async(*args: Any, **kwargs: Any) -> Any:
            return await evaluator(*args, **kwargs)

        wrapper: Callable[..., Any] = renamed_async
    else:

        def renamed(*args: Any, **kwargs: Any) -> Any:
            return evaluator(*args, **kwargs)

        wrapper = renamed
    functools.update_wrapper(wrapper, evaluator)
    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper
