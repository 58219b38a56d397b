"""Memory: peak RSS of ``evalwire run`` over a large JSONL dataset.

One ``evalwire run`` subprocess per size (a no-op task, one evaluator, the
console in non-TTY mode, the store on when installed), each the only child of
a fresh wrapper process that reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss``.
Targets: peak RSS at the largest size <= 300 MB, and within 1.2 x of the peak
at the smallest: memory must not grow with the dataset.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import (
    ASYNC_NOOP,
    STARTUP_PATCHES,
    Project,
    child_env,
    evalwire_command,
    median,
    peak_rss,
    result,
    row,
    scenario,
    store_setup,
)

NAME = "memory"
#: Prototype patches (``--patch``) that matter in the ``evalwire run`` children.
CHILD_PATCHES = (*STARTUP_PATCHES, "store-queue-cap")
LIMIT_MB = 300.0
GROWTH = 1.2


@scenario
def run(
    *,
    sizes: tuple[int, ...] = (100_000, 1_000_000),
    runs: int = 3,
    store_mode: str | None = None,
) -> dict[str, Any]:
    store = store_setup(store_mode)
    rows: list[dict[str, Any]] = []
    checks: dict[Any, Any] = {}  # by dataset size
    notes = [
        f"{store.label}; `evalwire run` subprocess, stdout a pipe (non-TTY); "
        "no-op async task + 1 evaluator"
    ]
    peaks: dict[int, float] = {}
    with Project(NAME) as project:
        for size in sizes:
            project.add(f"noop_{size}", ASYNC_NOOP, size)
        for size in sizes:
            measured = []
            for _ in range(runs):
                project.reset_store()
                cmd = evalwire_command(
                    [
                        "run",
                        "-e",
                        str(project.experiments),
                        "--name",
                        f"noop_{size}",
                        *(a for arg in store.args(on=True) for a in ("-p", arg)),
                    ],
                    CHILD_PATCHES,
                )
                measured.append(peak_rss(cmd, cwd=project.root, env=child_env()))
            last = measured[-1]
            checks[size] = {
                "exit_status": last["rc"],
                "stderr": last["stderr"].strip()[-300:] if last["rc"] else "",
            }
            if any(m["rc"] != 0 for m in measured):
                notes.append(
                    f"{size:,} examples: evalwire run exited {last['rc']}: "
                    f"{last['stderr'].strip().splitlines()[-1:] or ''}"
                )
            peak = median([m["rss_mb"] for m in measured])
            wall = median([m["wall"] for m in measured])
            peaks[size] = peak
            largest = size == max(sizes)
            rows.append(
                row(
                    f"peak RSS, {size:,} examples",
                    peak,
                    "MB",
                    target=f"<= {LIMIT_MB:.0f} MB" if largest else "",
                    ok=(peak <= LIMIT_MB) if largest else None,
                    runs=[m["rss_mb"] for m in measured],
                )
            )
            rows.append(
                row(
                    f"CLI throughput incl. start-up, {size:,} examples",
                    size / wall,
                    "ex/s",
                    runs=[size / m["wall"] for m in measured],
                    note=f"wall {wall:.2f} s",
                )
            )
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        growth = peaks[large] / peaks[small]
        rows.append(
            row(
                f"peak RSS growth, {large:,} vs {small:,}",
                growth,
                "x",
                target=f"<= {GROWTH} x",
                ok=growth <= GROWTH,
            )
        )
    return result(
        NAME,
        "Memory",
        {"sizes": list(sizes), "runs": runs, "store": store.mode},
        rows,
        checks,
        notes,
    )
