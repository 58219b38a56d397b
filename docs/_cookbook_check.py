"""Check that CONTRIBUTING.md's cookbook works, exactly as written.

    python docs/_cookbook_check.py [--venv PATH] [--keep]

Every fenced block after the "Cookbook" heading whose first line is a comment
naming a path (``# evalwire-failures/pyproject.toml``) is written to that path
in a temporary workspace; every ``bash`` block is then run there, in document
order, in one ``bash -euo pipefail`` script, with a virtual environment holding
this checkout of evalwire first on ``PATH``. The block that tells a reader to
make that environment (it names ``/path/to/evalwire``) is skipped: this script
makes it. The recipes' own commands install each plugin and run its tests, so
a recipe that does not work fails the check. Exit 0 when everything passed.

``--venv PATH`` reuses (or creates) that environment instead of a temporary
one, which saves the minute it takes to install evalwire's dependencies;
``--keep`` leaves the workspace in place and prints where it is.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "CONTRIBUTING.md"
START = "## Cookbook"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
PATH_COMMENT = re.compile(r"^# ([\w.-]+/[\w./-]+)\n")
SKIP_MARK = "/path/to/evalwire"

#: What the workspace must hold once the script has run, beyond every command succeeding.
EXPECTED = {
    "failures.jsonl": '"example_id": "b"',
    "dist/evalwire_failures-0.1.0-py3-none-any.whl": None,
}

#: What the script must print (regular expressions): the outcomes the recipes' comments promise.
PRINTED = (
    r"dataset 'loud' not found",  # recipe 2, before the plugin
    r"stream +passed +1/1 +0 +0\.00",  # recipe 3, before the plugin: the output is no string
    r"stream +passed +1/1 +0 +1\.00",  # recipe 3, with the plugin
    r"no executor named 'nope'",  # recipe 4
    r"1 failing run\(s\) written to failures\.jsonl",  # recipe 5
    r"failures +evalwire-failures 0\.1\.0 +\[addoption, run_complete, session_finish, "
    r"session_start\]",
    r"No such option '--failures'",  # recipe 5, blocked
)


def blocks(text: str) -> list[tuple[str, str]]:
    """The (language, body) of every fenced block after the cookbook's heading."""
    start = text.index(START)
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text, start)]


def prepare(workspace: Path, text: str) -> str:
    """Write the named files into ``workspace``; return the bash script to run."""
    script = []
    for language, body in blocks(text):
        named = PATH_COMMENT.match(body)
        if named and language in ("python", "toml"):
            target = workspace / named.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        elif language == "bash" and SKIP_MARK not in body:
            script.append(f"echo '+++ block {len(script) + 1}'\n{body}")
    return "\n".join(script)


def distributions(workspace: Path) -> list[str]:
    """The names of the distributions the cookbook defines."""
    found = []
    for pyproject in sorted(workspace.glob("*/pyproject.toml")):
        match = re.search(r'^name = "([^"]+)"', pyproject.read_text(encoding="utf-8"), re.M)
        if match:
            found.append(match.group(1))
    return found


def make_venv(venv: Path, workspace: Path) -> None:
    if (venv / "bin" / "evalwire").exists():
        # A reused environment: this checkout's evalwire, and none of a previous
        # check's plugins, so every "before the plugin" step sees no plugin.
        pip = [str(venv / "bin" / "pip"), "-q"]
        subprocess.run([*pip, "uninstall", "-y", *distributions(workspace)], check=True)
        subprocess.run([*pip, "install", "--force-reinstall", "--no-deps", str(REPO)], check=True)
        return
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "-q", str(REPO), "pytest"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="virtual environment to use or create")
    parser.add_argument("--keep", action="store_true", help="keep the workspace")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="evalwire-cookbook-"))
    workspace = scratch / "work"
    workspace.mkdir()
    venv = args.venv.resolve() if args.venv else scratch / "venv"
    try:
        script = prepare(workspace, SOURCE.read_text(encoding="utf-8"))
        make_venv(venv, workspace)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("EVALWIRE_", "PYTHON", "PHOENIX_")) and k != "VIRTUAL_ENV"
        }
        env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=workspace,
            env=env,
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        print(proc.stdout)
        if proc.returncode != 0:
            print(f"cookbook check FAILED: the script exited {proc.returncode}", file=sys.stderr)
            return 1
        for pattern in PRINTED:
            if not re.search(pattern, proc.stdout):
                print(f"cookbook check FAILED: the output lacks {pattern!r}", file=sys.stderr)
                return 1
        for relative, needle in EXPECTED.items():
            path = workspace / relative
            if not path.is_file() or (needle and needle not in path.read_text(encoding="utf-8")):
                print(
                    f"cookbook check FAILED: {relative} is missing or lacks {needle!r}",
                    file=sys.stderr,
                )
                return 1
        print("cookbook check passed")
        return 0
    finally:
        if args.keep:
            print(f"workspace kept in {workspace}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
