import pytest


@pytest.fixture(autouse=True)
def isolated_lab_dirs(tmp_path, monkeypatch):
    """Fast tests never read or write the user's real lab state or cache."""
    monkeypatch.setenv("NODELAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NODELAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NODELAB_REPORTS_DIR", str(tmp_path / "reports"))
