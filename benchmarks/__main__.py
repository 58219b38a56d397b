"""``python -m benchmarks [--quick] [--only NAME] ...``: run the scenarios, print a table,
write ``benchmarks/results/<YYYY-MM-DD>.json``."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import SCENARIOS
from benchmarks.common import (
    RESULTS,
    environment,
    force_store_module,
    set_autoload,
    table,
    write_results,
)

# Scenario keyword arguments: the real sizes, and --quick's tiny ones.
FULL: dict[str, dict[str, Any]] = {
    "schedule": {"examples": 2000, "concurrency": 100, "sleep": 0.05, "sync_slice": 200},
    "overhead": {"examples": 100_000},
    "memory": {"sizes": (100_000, 1_000_000)},
    "startup": {"runs": 5},
    "phoenix_recording": {"examples": 1000},
}
QUICK: dict[str, dict[str, Any]] = {
    "schedule": {"examples": 200, "concurrency": 100, "sleep": 0.05, "sync_slice": 20},
    "overhead": {"examples": 1_000},
    "memory": {"sizes": (1_000, 10_000)},
    "startup": {"runs": 1},
    "phoenix_recording": {"examples": 50},
}
RUNS_DEFAULT, RUNS_QUICK = 3, 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and one run each, for a fast look"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        choices=SCENARIOS,
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--runs",
        type=int,
        metavar="N",
        help="runs per measurement (default 3, 1 with --quick; start-up: 5)",
    )
    parser.add_argument(
        "--store-module",
        action="store_true",
        help="load the store with -p evalwire.builtin.store when it is not an entry point yet",
    )
    parser.add_argument(
        "--autoload",
        action="store_true",
        help="let sessions load third-party plugins installed in the "
        "environment (default: evalwire's own plugins only)",
    )
    parser.add_argument(
        "--patch",
        metavar="NAMES",
        help="apply prototype core changes (comma-separated, or 'all'); see benchmarks/patches.py",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="results file (default benchmarks/results/<date>[-quick|-patched].json)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    force_store_module(args.store_module)
    set_autoload(args.autoload)
    sizes = QUICK if args.quick else FULL
    runs = args.runs or (RUNS_QUICK if args.quick else RUNS_DEFAULT)
    selected = args.only or list(SCENARIOS)
    patch_names = [p for p in (args.patch or "").split(",") if p]

    from benchmarks.patches import applied

    results = []
    started = time.time()
    load_at_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    with applied(patch_names) as patch_names:
        for name in SCENARIOS:
            if name not in selected:
                continue
            kwargs = dict(sizes[name])
            if name == "startup":
                kwargs["runs"] = args.runs or kwargs["runs"]
            else:
                kwargs["runs"] = runs
            print(f"running {name} {kwargs} ...", file=sys.stderr, flush=True)
            module = importlib.import_module(f"benchmarks.{name}")
            t0 = time.perf_counter()
            res = module.run(**kwargs)
            res["seconds"] = round(time.perf_counter() - t0, 3)
            res["patches"] = patch_names  # per scenario: the day's file merges runs
            results.append(res)

    print(table(results))
    if args.no_write:
        return 0
    today = dt.date.today().isoformat()
    suffix = "-quick" if args.quick else ("-patched" if patch_names else "")
    path = args.output or RESULTS / f"{today}{suffix}.json"
    document = {
        "date": today,
        "started_at": started,
        "quick": args.quick,
        "patches": patch_names,
        "autoload": args.autoload,
        "environment": {**environment(), "load_average_at_start": load_at_start},
        "scenarios": {r["name"]: r for r in results},
    }
    write_results(path, document)
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
