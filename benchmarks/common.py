"""What every scenario shares: throw-away projects, timing, peak RSS, the table, the JSON file.

Scenarios run evalwire the way users do: through ``evalwire.ExperimentRunner``
in this process, or through the ``evalwire`` console script in a subprocess
when start-up or a process's memory is what is measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PYTHON = sys.executable


def evalwire_script() -> str:
    """The ``evalwire`` console script beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "evalwire"
    if beside.is_file():
        return str(beside)
    found = shutil.which("evalwire")
    if found is None:
        raise RuntimeError("the evalwire console script is not installed beside this Python")
    return found


# -- experiment sources ---------------------------------------------------------

CORRECT = "def correct(output, expected):\n    return output == expected['a']\n"
ASYNC_NOOP = "async def task(input):\n    return input['q']\n"
SYNC_NOOP = "def task(input):\n    return input['q']\n"


def async_sleep_task(seconds: float) -> str:
    return (
        "import asyncio\n\n\n"
        f"async def task(input):\n    await asyncio.sleep({seconds!r})\n    return input['q']\n"
    )


def sync_sleep_task(seconds: float) -> str:
    return (
        f"import time\n\n\ndef task(input):\n    time.sleep({seconds!r})\n    return input['q']\n"
    )


def write_jsonl(path: Path, count: int) -> None:
    """``count`` Phoenix-shaped rows ``{"id", "input": {"q": i}, "expected": {"a": i}}``.

    A plain loop over preformatted text: a million rows take about a second.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", buffering=1 << 20) as fh:
        write = fh.write
        for i in range(count):
            write(f'{{"id":"ex{i}","input":{{"q":{i}}},"expected":{{"a":{i}}}}}\n')


class Project:
    """A throw-away project folder: ``evalwire.toml`` (so the store lands inside it) and
    ``experiments/NAME/{task.py, correct.py, dataset.jsonl}``. Removed on exit."""

    def __init__(self, label: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"evalwire-bench-{label}-"))
        # The config file marks the project root: the embedded store goes to
        # ROOT/.evalwire, never into the current folder.
        (self.root / "evalwire.toml").write_text("", encoding="utf-8")
        self.experiments = self.root / "experiments"
        self.experiments.mkdir()

    def add(
        self,
        name: str,
        task_source: str,
        examples: int,
        evaluators: dict[str, str] | None = None,
    ) -> Path:
        folder = self.experiments / name
        folder.mkdir()
        (folder / "task.py").write_text(task_source, encoding="utf-8")
        if evaluators is None:
            evaluators = {"correct": CORRECT}
        for stem, source in evaluators.items():
            (folder / f"{stem}.py").write_text(source, encoding="utf-8")
        write_jsonl(folder / "dataset.jsonl", examples)
        return folder

    def store_file(self) -> Path:
        return self.root / ".evalwire" / "evalwire.db"

    def reset_store(self) -> None:
        """Start every timed run from an empty store, as a first run would."""
        shutil.rmtree(self.root / ".evalwire", ignore_errors=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


# -- the embedded store ---------------------------------------------------------


STORE_MODULE = "evalwire.builtin.store"


@dataclass(frozen=True)
class Store:
    """How to switch the embedded store on and off with ``-p`` values.

    ``mode`` is ``"entry point"`` once ``evalwire plugins`` lists ``store``;
    ``"-p module"`` when asked to load the module by path before it is an entry
    point; ``"unavailable"`` otherwise (every "store on" figure is then without it).
    """

    mode: str

    @property
    def available(self) -> bool:
        return self.mode != "unavailable"

    def args(self, on: bool) -> tuple[str, ...]:
        if self.mode == "entry point":
            return () if on else ("no:store",)
        if self.mode == "-p module":
            return (STORE_MODULE,) if on else ()
        return ()

    @property
    def label(self) -> str:
        return {
            "entry point": "store on",
            "-p module": f"store on (-p {STORE_MODULE})",
        }.get(self.mode, "store unavailable: measured without it")


_FORCE_STORE_MODULE = False
#: Load third-party plugins too (``--autoload``). Off by default: the figures are
#: evalwire's own, whatever else happens to be installed in the environment.
AUTOLOAD = False
#: Prototype patches active in this process (``benchmarks.patches.applied`` sets it);
#: scenarios that start evalwire in a subprocess apply them there too.
ACTIVE_PATCHES: list[str] = []


def force_store_module(flag: bool) -> None:
    """Load the store by module path when it is not (yet) an entry point."""
    global _FORCE_STORE_MODULE
    _FORCE_STORE_MODULE = flag


def set_autoload(flag: bool) -> None:
    global AUTOLOAD
    AUTOLOAD = flag


@contextlib.contextmanager
def evalwire_env() -> Iterator[None]:
    """Keep third-party plugins out of this process's sessions (unless ``--autoload``)."""
    key = "EVALWIRE_DISABLE_PLUGIN_AUTOLOAD"
    old = os.environ.get(key)
    if AUTOLOAD:
        os.environ.pop(key, None)
    else:
        os.environ[key] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


F = TypeVar("F", bound=Callable[..., Any])


def scenario(fn: F) -> F:
    """Mark a scenario's ``run``: its sessions see evalwire's own plugins only."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with evalwire_env():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def store_setup(mode: str | None = None) -> Store:
    """The store as ``evalwire plugins`` sees it (``mode`` overrides the detection)."""
    if mode is not None:
        return Store(mode)
    from evalwire.plugins import Plugins

    with evalwire_env():
        listed = Plugins.load().has("store")
    if listed:
        return Store("entry point")
    if _FORCE_STORE_MODULE:
        return Store("-p module")
    return Store("unavailable")


# -- timing -------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """``fn()``'s wall time in seconds and its result."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def run_experiments(runner: Any, names: Sequence[str]) -> list[Any]:
    """``runner.run(names)``; a failed experiment's results are returned, not raised.

    ``ExperimentsFailed`` is a ``SystemExit``: left alone it would end the harness
    quietly. The scenarios' checks report what failed instead.
    """
    from evalwire.errors import ExperimentsFailed

    try:
        return list(runner.run(list(names)))
    except ExperimentsFailed as exc:
        return list(exc.results)


@contextlib.contextmanager
def quiet(stderr: bool = True) -> Iterator[None]:
    """Send stdout (and stderr) to the null device: a non-TTY stream, as in CI.

    The console reporter checks ``isatty`` when a session starts, so it prints
    its plain progress lines and summary into the void instead of drawing bars.
    """
    with open(os.devnull, "w", encoding="utf-8") as null:
        with contextlib.redirect_stdout(null):
            if stderr:
                with contextlib.redirect_stderr(null):
                    yield
            else:
                yield


# -- processes ----------------------------------------------------------------

# A fresh parent per measurement: RUSAGE_CHILDREN's ru_maxrss is the largest
# child ever waited for, so one parent must wait for exactly one child.
_RSS_WRAPPER = """\
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
print(json.dumps({"rc": done.returncode, "wall": wall, "rss_bytes": rss * scale,
                  "stderr": done.stderr.decode(errors="replace")[-2000:]}))
"""


def peak_rss(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` as a child of a fresh wrapper; its peak RSS, exit code, wall time, stderr."""
    done = subprocess.run(
        [PYTHON, "-c", _RSS_WRAPPER, *cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout)
    data["rss_mb"] = data["rss_bytes"] / 1e6
    return data


def wall_of(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall time of one subprocess run (output discarded); raises if it fails."""
    return cost_of(cmd, cwd, env)[0]


def cost_of(
    cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one subprocess run; raises if it fails.

    CPU time barely moves when other processes compete for the cores, so it is
    the figure to compare between runs on a busy machine.
    """
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def child_env() -> dict[str, str]:
    """The environment for child evalwire processes: ours, unbuffered, no tracing."""
    env = dict(os.environ)
    env.pop("EVALWIRE_TRACE_PLUGINS", None)
    env.pop("EVALWIRE_DISABLE_PLUGIN_AUTOLOAD", None)
    if not AUTOLOAD:
        env["EVALWIRE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if ACTIVE_PATCHES:  # the child imports benchmarks.patches
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


#: The prototype patches that concern a process's start-up. Child processes get only
#: the patches they are given (by default these): applying the others would import
#: what they patch (asyncio, ...) into a start-up measurement.
STARTUP_PATCHES = ("cached-entry-points", "lazy-dist-metadata", "stdlib-metadata")


def python_snippet(code: str, relevant: Sequence[str] = STARTUP_PATCHES) -> list[str]:
    """``python -c code``, run under the active prototype patches among ``relevant``."""
    active = [p for p in ACTIVE_PATCHES if p in relevant]
    if not active:
        return [PYTHON, "-c", code]
    body = "\n".join("    " + line for line in code.splitlines())
    wrapped = f"from benchmarks.patches import applied\nwith applied({active!r}):\n{body}\n"
    return [PYTHON, "-c", wrapped]


def evalwire_command(args: Sequence[str], relevant: Sequence[str] = STARTUP_PATCHES) -> list[str]:
    """The ``evalwire`` console script with ``args`` (under the active patches among
    ``relevant``)."""
    if not any(p in relevant for p in ACTIVE_PATCHES):
        return [evalwire_script(), *args]
    return python_snippet(
        f"import sys\nfrom evalwire.cli import main\nrc = main({list(args)!r})\nsys.exit(rc)",
        relevant,
    )


# -- results ------------------------------------------------------------------


def row(
    measure: str,
    value: float | None,
    unit: str,
    *,
    target: str = "",
    ok: bool | None = None,
    peer: str = "",
    ratio: float | None = None,
    extrapolated: str = "",
    runs: Sequence[float] = (),
    note: str = "",
) -> dict[str, Any]:
    """One line of a scenario's result (and of the printed table)."""
    return {
        "measure": measure,
        "value": value,
        "unit": unit,
        "target": target,
        "ok": ok,
        "peer": peer,
        "ratio": ratio,
        "extrapolated": extrapolated,
        "runs": [round(r, 6) for r in runs],
        "note": note,
    }


def result(
    name: str,
    title: str,
    params: dict[str, Any],
    rows: list[dict[str, Any]],
    checks: dict[str, Any],
    notes: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A scenario's result: what ``python -m benchmarks`` prints and records."""
    return {
        "name": name,
        "title": title,
        "params": params,
        "rows": rows,
        "checks": checks,
        "notes": notes or [],
        **extra,
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if value != value:  # NaN
        return "n/a"
    if unit == "ex/s":
        return f"{value:,.0f} {unit}"
    if unit in ("µs", "us", "ms"):
        return f"{value:,.1f} {unit}"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if unit == "x":
        return f"{value:.2f} x"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:g} {unit}".strip()


def table(results: Sequence[dict[str, Any]]) -> str:
    """Every scenario's rows as one plain-text table, then each scenario's notes."""
    header = (
        "scenario",
        "measure",
        "median",
        "target",
        "ok",
        "peer (same run)",
        "evalwire/peer",
        "extrapolated",
        "note",
    )
    lines: list[tuple[str, ...]] = [header]
    for res in results:
        for r in res["rows"]:
            ok = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f} x"
            lines.append(
                (
                    res["name"],
                    r["measure"],
                    fmt(r["value"], r["unit"]),
                    r["target"],
                    ok,
                    r["peer"],
                    ratio,
                    r["extrapolated"],
                    r["note"],
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    for res in results:
        for note in res["notes"]:
            out.append(f"[{res['name']}] {note}")
    return "\n".join(out)


def environment() -> dict[str, Any]:
    """Where the figures were measured."""
    try:
        from importlib.metadata import version

        evalwire_version = version("evalwire")
    except Exception:  # pragma: no cover - running from a bare tree
        evalwire_version = "unknown"
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        )
        commit = done.stdout.strip() or None
    plugins: list[str] = []
    with contextlib.suppress(Exception), evalwire_env():
        from evalwire.plugins import Plugins

        plugins = [info.name for info in Plugins.load().infos()]
    return {
        "plugins": plugins,
        "store": store_setup().mode,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "evalwire": evalwire_version,
        "git_commit": commit,
    }


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Write (merging with the same day's file: a scenario run again replaces its entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        merged = dict(old.get("scenarios", {}))
        merged.update(document["scenarios"])
        document = {**document, "scenarios": merged}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=repr) + "\n", encoding="utf-8")
    os.replace(tmp, path)
