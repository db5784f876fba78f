"""The supercronic stand-in has supercronic 0.2.30's defect: as PID 1 it never
reaps what its jobs leave behind (and it does run the jobs)."""

import os
import shutil
import subprocess
import time

import pytest

from lab.recipes import standins
from lab.nodetools import procs

needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare to make the stand-in a PID namespace's PID 1")


@pytest.fixture
def standin():
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (`nodelab setup` installs it)")
    return standins.build("supercronic")


def test_an_unsupported_schedule_is_refused(standin, tmp_path):
    crontab = tmp_path / "crontab"
    crontab.write_text("0 3 * * * echo nightly\n")
    proc = subprocess.run([str(standin), str(crontab)], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2
    assert "supports only" in proc.stderr


@needs_root
def test_as_pid_1_it_leaves_orphaned_job_children_as_zombies(standin, tmp_path):
    crontab = tmp_path / "crontab"
    marker = tmp_path / "ran"
    crontab.write_text(f"*/1 * * * * * * (sleep 0.2 &) ; sleep 0.3 & touch {marker}\n")
    outer = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", str(standin), str(crontab)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        pid1 = None
        while pid1 is None and time.monotonic() < deadline:
            kids = procs.children(outer.pid)
            pid1 = kids[0][0] if kids else None
            time.sleep(0.05)
        assert pid1 is not None and procs.nspids(pid1)[-1] == 1
        time.sleep(3.5)
        assert marker.exists()                         # the jobs ran
        zombies = procs.children_states(pid1)["Z"]
        assert zombies >= 4                             # two orphans per job, three jobs or more, none reaped
    finally:
        outer.kill()
        outer.wait()
