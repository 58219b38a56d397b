"""Fixtures every test module may use: the real Phoenix server the suite starts."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["phoenix_fixture"]


@pytest.fixture(autouse=True)
def _work_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test from its own folder, so nothing (a store, a results file) lands in the repo."""
    monkeypatch.chdir(tmp_path)
