"""Shared by every test under the repository (tests/ and plugins/*/tests)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _work_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test from its own folder, so nothing (a store, a results file) lands in the repo."""
    monkeypatch.chdir(tmp_path)
