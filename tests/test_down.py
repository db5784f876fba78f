import signal
import subprocess
import threading

import docker.errors
import pytest

from lab import paths
from lab.backends.docker import engine as docker_engine
from lab.owned import daemons
from lab.cluster.lab import Lab
from lab.errors import LabError
from lab.owned.state import Resource, process_start_time


@pytest.fixture
def no_engine(monkeypatch):
    def refuse(timeout=0):
        raise LabError("no engine in fast tests")
    monkeypatch.setattr(docker_engine, "docker_client", refuse)


def test_down_removes_recorded_processes_and_dirs_but_keeps_what_it_is_told(no_engine, tmp_path):
    lab = Lab(say=lambda m: None)
    mine = paths.state_dir() / "nodes" / "n1"
    mine.mkdir(parents=True)
    outside = tmp_path / "not-the-labs"
    outside.mkdir()
    lab.state.record(Resource("dir", str(mine), "node-dir"))
    lab.state.record(Resource("dir", str(outside), "node-dir"))       # never deleted: outside the state dir
    engine = subprocess.Popen(["sleep", "60"])
    other = subprocess.Popen(["sleep", "60"])
    try:
        for proc, role in ((engine, "dockerd"), (other, "etcd")):
            lab.state.record(Resource("process", f"pid:{proc.pid}", role,
                                      {"start_time": process_start_time(proc.pid)}))
        removed = lab.down(keep=lambda r: r.role == "dockerd")
        assert not mine.exists() and outside.exists()
        assert other.wait(timeout=20) is not None
        assert engine.poll() is None
        assert any(r.startswith("process etcd") for r in removed)
        assert [r.role for r in lab.state.resources()] == ["dockerd"]
    finally:
        engine.kill()
        other.kill()


def test_down_with_nothing_recorded_says_so(no_engine):
    assert Lab(say=lambda m: None).down() == []
    assert daemons.live(Lab().state, "dockerd") is None


def test_down_waits_while_another_run_holds_the_lab(no_engine, hold_lab_elsewhere):
    said, results = [], []
    lab = Lab(say=said.append)
    lab.lock.poll = 0.05
    holder = hold_lab_elsewhere(paths.state_dir())
    try:
        thread = threading.Thread(target=lambda: results.append(lab.down()), daemon=True)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive() and not results
        assert f"held by pid {holder.pid}" in said[0]
        holder.send_signal(signal.SIGKILL)
        thread.join(5.0)
        assert results == [[]]
    finally:
        lab.release()


class EngineThatStops:
    """Answers until the recorded dockerd is stopped, then refuses like a dead socket."""
    def __init__(self, proc):
        self.proc = proc
        self.calls_after_stop = 0
        self.containers = self.networks = self

    def list(self, **kwargs):
        if self.proc.poll() is not None:
            self.calls_after_stop += 1
            raise ConnectionError("engine socket gone")
        return []

    def get(self, name):
        self.list()
        raise docker.errors.NotFound(f"no {name}")


def test_down_does_not_talk_to_the_engine_it_stopped(monkeypatch):
    engine = subprocess.Popen(["sleep", "60"])
    client = EngineThatStops(engine)
    monkeypatch.setattr(docker_engine, "docker_client", lambda timeout=0: client)
    lab = Lab(say=lambda m: None)
    lab.state.record(Resource("process", f"pid:{engine.pid}", "dockerd",
                              {"start_time": process_start_time(engine.pid)}))
    lab.state.record(Resource("network", "nodelab-net", "network"))   # removed by label already: forgotten too
    try:
        removed = lab.down()
        engine.wait(timeout=20)
        assert any(r.startswith("process dockerd") for r in removed)
        assert client.calls_after_stop == 0 and lab.state.resources() == []
    finally:
        engine.kill()
