"""Start-up: how long ``evalwire --help`` and ``evalwire plugins`` take, as a user types them.

The console script in a subprocess, median of ``runs`` (after one warm-up run
that fills the OS file cache and writes bytecode). Targets: ``--help`` <= 0.25
s, ``plugins`` <= 0.6 s. The heaviest imports (``python -X importtime``) are
recorded every time and shown when a target is missed.

The breakdown runs growing snippets in fresh interpreters (the interpreter
alone; ``import evalwire.cli``; listing the entry points; ``Plugins.load()``;
the whole ``--help``) and reports each step's increment.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON,
    child_env,
    cost_of,
    evalwire_command,
    median,
    python_snippet,
    result,
    row,
    scenario,
    wall_of,
)

NAME = "startup"
TARGETS = {"--help": 0.25, "plugins": 0.6}
TOP = 8

# Each snippet does what the one before it did, and one more step.
STAGES = (
    ("interpreter (python -c pass)", "pass"),
    ("+ import evalwire.cli (click, core modules)", "import evalwire.cli"),
    (
        "+ list the entry points (metadata scan of site-packages)",
        "import evalwire.cli\nfrom evalwire.plugins import _entry_points\nlist(_entry_points())",
    ),
    (
        "+ load plugins (METADATA reads, plugin modules' imports)",
        "import evalwire.cli\nfrom evalwire.plugins import Plugins\nPlugins.load()",
    ),
    (
        "+ build the command line, print --help",
        "import sys\nfrom evalwire.cli import main\nsys.exit(main(['--help']))",
    ),
)


@scenario
def run(
    *, runs: int = 5, importtime: bool = True, breakdown: bool = True, warmup: bool = True
) -> dict[str, Any]:
    env = child_env()
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    notes: list[str] = []
    offenders: dict[str, Any] = {}
    stages: list[dict[str, Any]] = []
    # An empty folder: no config file above it to read.
    with tempfile.TemporaryDirectory(prefix="evalwire-bench-startup-") as tmp:
        cwd = Path(tmp)
        for command, target in TARGETS.items():
            args = evalwire_command(command.split())
            done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
            checks[command] = {
                "exit_status": done.returncode,
                "stdout_lines": len(done.stdout.splitlines()),
            }
            costs = [cost_of(args, cwd, env) for _ in range(runs)]
            walls = [w for w, _ in costs]
            wall = median(walls)
            cpu = median([c for _, c in costs])
            checks[command]["cpu_s"] = cpu
            rows.append(
                row(
                    f"evalwire {command}",
                    wall,
                    "s",
                    target=f"<= {target} s",
                    ok=wall <= target,
                    runs=walls,
                    note=f"min {min(walls):.3f} s; CPU {cpu:.3f} s",
                )
            )
            if importtime:
                top = import_offenders(args, cwd, env)
                offenders[command] = top
                if wall > target:
                    listed = ", ".join(
                        f"{t['module']} {t['cumulative_ms']:.0f} ms" for t in top["top_level"][:6]
                    )
                    notes.append(
                        f"evalwire {command} over target; heaviest top-level imports "
                        f"(-X importtime, cumulative): {listed}"
                    )
        if breakdown:
            stages = _breakdown(cwd, env, runs, notes, warmup)
            previous = 0.0
            for stage in stages:
                cpu = stage["cumulative_cpu_s"]
                rows.append(
                    row(
                        f"breakdown (CPU): {stage['stage']}",
                        (cpu - previous) * 1e3,
                        "ms",
                        note=f"cumulative CPU {cpu * 1e3:.0f} ms, "
                        f"wall {stage['cumulative_wall_s'] * 1e3:.0f} ms",
                    )
                )
                previous = cpu
    return result(
        NAME, "Start-up", {"runs": runs}, rows, checks, notes, imports=offenders, stages=stages
    )


def _breakdown(
    cwd: Path, env: dict[str, str], runs: int, notes: list[str], warmup: bool
) -> list[dict[str, Any]]:
    """Each stage's median CPU and wall time; stages interleaved run by run, so a busy
    spell on the machine lands on all of them rather than on one."""
    commands = []
    for label, code in STAGES:
        cmd = python_snippet(code)
        try:
            if warmup:  # bytecode, file cache; a broken stage is skipped
                wall_of(cmd, cwd, env)
        except subprocess.CalledProcessError as exc:
            notes.append(
                f"start-up stage '{label}' failed: "
                f"{exc.stderr.decode(errors='replace').strip()[-200:]}"
            )
            continue
        commands.append((label, cmd))
    costs: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in commands}
    for _ in range(runs):
        for label, cmd in list(commands):
            try:
                costs[label].append(cost_of(cmd, cwd, env))
            except subprocess.CalledProcessError as exc:
                notes.append(
                    f"start-up stage '{label}' failed: "
                    f"{exc.stderr.decode(errors='replace').strip()[-200:]}"
                )
                commands.remove((label, cmd))
    return [
        {
            "stage": label,
            "cumulative_cpu_s": median([c for _, c in costs[label]]),
            "cumulative_wall_s": median([w for w, _ in costs[label]]),
        }
        for label, _ in commands
        if costs[label]
    ]


def import_offenders(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """The heaviest top-level imports (cumulative) and single modules (self time) of ``args``."""
    if args[0] != PYTHON:
        args = [PYTHON, *args]  # the console script is a Python file
    done = subprocess.run(
        [args[0], "-X", "importtime", *args[1:]], cwd=cwd, env=env, capture_output=True, text=True
    )
    return parse_importtime(done.stderr)


def parse_importtime(stderr: str) -> dict[str, Any]:
    """``-X importtime`` output summarized: total, heaviest top-level and single imports."""
    entries: list[dict[str, Any]] = []
    # "import time:   self [us] | cumulative | imported package", nesting shown by indent.
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        self_us, cumulative_us, raw = parts
        try:
            self_ms, cumulative_ms = int(self_us) / 1e3, int(cumulative_us) / 1e3
        except ValueError:
            continue
        depth = (len(raw) - len(raw.lstrip(" ")) - 1) // 2
        entries.append(
            {
                "module": raw.strip(),
                "self_ms": self_ms,
                "cumulative_ms": cumulative_ms,
                "depth": depth,
            }
        )
    top_level = sorted((e for e in entries if e["depth"] == 0), key=lambda e: -e["cumulative_ms"])[
        :TOP
    ]
    by_self = sorted(entries, key=lambda e: -e["self_ms"])[:TOP]
    return {
        "total_ms": sum(e["self_ms"] for e in entries),
        "modules": len(entries),
        "top_level": top_level,
        "top_self": by_self,
    }
