"""The shipped quickstart runs as the README says, with no server and no API key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "quickstart" / "experiments"


def evalwire(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evalwire", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_quickstart_runs_every_experiment_and_exits_0(tmp_path: Path) -> None:
    done = evalwire("run", "-e", str(EXAMPLES), "--no-store", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("arithmetic", "capitals", "retrieval"):
        assert name in done.stdout
    assert "0.50" in done.stdout  # the deliberately imperfect capitals model


def test_a_sweep_of_the_quickstart_names_the_winner_with_a_sentence(tmp_path: Path) -> None:
    done = evalwire(
        "run",
        "-e",
        str(EXAMPLES),
        "--name",
        "capitals",
        "--no-store",
        "--matrix",
        "model=small,large",
        "--repeats",
        "3",
        "--select",
        "accuracy",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "model=small  0.500 ± 0.000" in done.stdout
    assert "Best arm by highest 'accuracy': model=large" in done.stdout
    assert "adopt model=large" in done.stdout
