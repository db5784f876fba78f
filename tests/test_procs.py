import os
import subprocess
import time

from lab.nodetools import procs


def test_an_unreaped_child_is_counted_as_a_zombie_until_it_is_reaped():
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while procs.children_states(os.getpid())["Z"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (child.pid, os.getpid(), "Z", "true") in procs.children(os.getpid())
    assert not procs.alive(child.pid)
    child.wait()
    assert child.pid not in [pid for pid, *_ in procs.children(os.getpid())]


def test_nspids_of_a_process_starts_with_its_pid_here():
    assert procs.nspids(os.getpid())[0] == os.getpid()


def test_a_process_is_alive_only_as_the_process_that_had_its_pid():
    child = subprocess.Popen(["sleep", "30"])
    try:
        started = procs.start_ticks(child.pid)
        assert started is not None and procs.alive(child.pid, started)
        assert not procs.alive(child.pid, started + 1)   # the same PID, another process (a reused PID)
        assert procs.alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert procs.start_ticks(child.pid) is None and not procs.alive(child.pid, started)
