import os
import subprocess
import sys

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


HOLDER = """
import sys, time
from pathlib import Path
from lab.owned.lablock import LabLock
LabLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def hold_lab_elsewhere():
    """Starts another process that holds the lab at a root (lab.owned.lablock) and
    returns it once it holds it; the process is killed at the end of the test."""
    started = []

    def hold(root) -> subprocess.Popen:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True)
        started.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder

    yield hold
    for holder in started:
        holder.kill()
        holder.wait()
