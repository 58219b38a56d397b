"""Reading the gates: from ``--fail-under``, ``--max-regression`` and
``--baseline``, and from the config file's tables (see :mod:`evalwire.gates`
for which wins)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from evalwire.errors import UsageError
from evalwire.gating.names import BASELINE, FAIL_UNDER, MAX_REGRESSION
from evalwire.gating.records import Gate, GatePlan

if TYPE_CHECKING:
    from evalwire.config import Config


def plan(config: Config) -> GatePlan:
    """The session's gates, from the command line and the config file.

    A malformed gate or baseline is a :class:`UsageError` naming where it was given.
    """
    file_name = config.config_path.name if config.config_path is not None else "config file"
    tables = {
        name: table
        for name, table in config.section("experiments").items()
        if isinstance(table, dict)
    }
    gates: dict[str, tuple[dict[str, Gate], dict[str, dict[str, Gate]]]] = {}
    for key in (FAIL_UNDER, MAX_REGRESSION):
        global_gates: dict[str, Gate] = {}
        top = config.settings.get(key)
        if top is not None:
            global_gates.update(_from_table(top, f"{file_name} {key}", None, key))
        given = config.options.get(key)
        if given:
            global_gates.update(_from_option(given, key))
        experiment_gates: dict[str, dict[str, Gate]] = {}
        for name, table in tables.items():
            if table.get(key) is not None:
                source = f"{file_name} [experiments.{name}] {key}"
                experiment_gates[name] = _from_table(table[key], source, name, key)
        gates[key] = global_gates, experiment_gates
    cli_baselines = _baselines(config.options.get(BASELINE), "--baseline")
    top_baselines = _baselines(config.settings.get(BASELINE), f"{file_name} baseline")
    experiment_baselines = {
        name: _baselines(table.get(BASELINE), f"{file_name} [experiments.{name}] baseline")
        for name, table in tables.items()
        if table.get(BASELINE) is not None
    }
    gate_plan = GatePlan(
        *gates[FAIL_UNDER],
        *gates[MAX_REGRESSION],
        baselines=cli_baselines or top_baselines,
        baselines_from_cli=bool(cli_baselines),
        experiment_baselines=experiment_baselines,
    )
    if cli_baselines and not gate_plan.has_regressions:
        raise UsageError(
            "--baseline says what to compare with, but no gate compares: "
            "add --max-regression EVALUATOR=DELTA (or max_regression in evalwire.toml)"
        )
    return gate_plan


def _baselines(value: Any, where: str) -> tuple[str, ...]:
    """``last`` and record ids, from an option (repeatable) or a config value."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise UsageError(f'{where} must be "last" or a recorded experiment\'s id, not {value!r}')
    refs = tuple(dict.fromkeys(i.strip() for i in items))
    if any(not r for r in refs):
        raise UsageError(f'{where} must be "last" or a recorded experiment\'s id, not {value!r}')
    return refs


def _from_table(table: Any, source: str, experiment: str | None, key: str) -> dict[str, Gate]:
    if not isinstance(table, Mapping):
        example = "{accuracy = 0.8}" if key == FAIL_UNDER else "{accuracy = 0.02}"
        raise UsageError(
            f"{source} must be a table of evaluator = "
            f"{'threshold' if key == FAIL_UNDER else 'delta'} ({key} = {example}), not {table!r}"
        )
    return {
        str(name): Gate(
            str(name), _threshold(value, f"{source}: '{name}'", kind=key), source, experiment, key
        )
        for name, value in table.items()
    }


def _from_option(given: Any, key: str = FAIL_UNDER) -> dict[str, Gate]:
    """``--fail-under`` (or ``--max-regression``) values: ``EVALUATOR=VALUE`` strings
    (or, from the Python API, a mapping or ``(evaluator, value)`` pairs)."""
    flag = "--" + key.replace("_", "-")
    items: Iterable[Any] = given.items() if isinstance(given, Mapping) else given
    if isinstance(given, str):
        items = [given]
    gates: dict[str, Gate] = {}
    for item in items:
        if isinstance(item, str):
            name, sep, value = item.rpartition("=")
            if not sep or not name.strip():
                what = "VALUE" if key == FAIL_UNDER else "DELTA"
                raise UsageError(f"{flag} expects EVALUATOR={what}, got {item!r}")
            name = name.strip()
            threshold = _threshold(value.strip(), f"{flag} {item!r}", parse=True, kind=key)
        else:
            try:
                name, value = item
            except (TypeError, ValueError):
                raise UsageError(
                    f"{key} expects EVALUATOR=VALUE or (evaluator, value), got {item!r}"
                ) from None
            name = str(name)
            threshold = _threshold(value, f"{key} {name!r}", kind=key)
        gates[name] = Gate(name, threshold, flag, kind=key)
    return gates


def _threshold(value: Any, where: str, *, parse: bool = False, kind: str = FAIL_UNDER) -> float:
    if parse and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{where}: the threshold must be a number") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise UsageError(f"{where}: the threshold must be a number, not {value!r}")
    if not math.isfinite(number):
        raise UsageError(f"{where}: the threshold must be a finite number, not {value!r}")
    if kind == MAX_REGRESSION and number < 0:
        raise UsageError(f"{where}: the drop allowed must be 0 or more, not {value!r}")
    return number
