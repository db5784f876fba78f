import subprocess

from lab.owned import daemons
from lab.owned.state import LabState, Resource, owner_label, process_start_time


def test_record_forget_and_removal_order(tmp_path):
    s = LabState(tmp_path)
    s.record(Resource("dir", "/x", "node-dir"))
    s.record(Resource("network", "net", "network"))
    s.record(Resource("process", "pid:1", "etcd"))
    s.record(Resource("container", "n1", "node"))
    s.record(Resource("container", "n2", "node"))
    assert [r.ref for r in s.removal_order()] == ["n2", "n1", "pid:1", "net", "/x"]
    s.forget("container", "n1")
    assert [r.ref for r in s.resources("container")] == ["n2"]
    s.record(Resource("container", "n2", "node", {"again": True}))   # re-recording replaces
    assert len(s.resources("container")) == 1 and s.resources("container")[0].detail == {"again": True}


def test_state_survives_a_new_instance(tmp_path):
    LabState(tmp_path).record(Resource("network", "net", "network"))
    assert LabState(tmp_path).resources("network")[0].ref == "net"


def test_owner_label_depends_on_state_dir(monkeypatch, tmp_path):
    a = owner_label()
    monkeypatch.setenv("NODELAB_STATE_DIR", str(tmp_path / "other"))
    assert owner_label() != a


def test_a_reused_pid_is_not_ours(tmp_path):
    proc = subprocess.Popen(["sleep", "30"])
    try:
        mine = Resource("process", f"pid:{proc.pid}", "x", {"start_time": process_start_time(proc.pid)})
        assert daemons.running(mine)
        reused = Resource("process", f"pid:{proc.pid}", "x", {"start_time": "1"})
        assert not daemons.running(reused)
        daemons.stop(reused)              # must not signal somebody else's process
        assert proc.poll() is None
        daemons.stop(mine)
        proc.wait(timeout=10)
        assert not daemons.running(mine)
    finally:
        proc.kill()


def test_start_records_before_returning(tmp_path):
    s = LabState(tmp_path)
    pid = daemons.start(s, "sleeper", ["sleep", "30"], tmp_path / "sleeper.log")
    try:
        res = daemons.live(s, "sleeper")
        assert res is not None and res.ref == f"pid:{pid}"
    finally:
        daemons.stop(res)
    assert daemons.live(s, "sleeper") is None
