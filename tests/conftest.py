import os

import pytest

# The build cache in force for this run (CI may point NODELAB_CACHE_DIR at one);
# integration tests use it, fast tests never do.
REAL_CACHE_DIR = os.environ.get("NODELAB_CACHE_DIR")


@pytest.fixture(autouse=True)
def isolated_lab_dirs(tmp_path, monkeypatch):
    """Fast tests never read or write the user's real lab state or cache."""
    monkeypatch.setenv("NODELAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NODELAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NODELAB_REPORTS_DIR", str(tmp_path / "reports"))
