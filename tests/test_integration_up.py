"""`up` brings a real node to Ready against the lab's API server; `down` leaves nothing.

Runs in a lab of its own (a separate state dir, hence its own owner label,
network and control plane), so it never touches a lab the user has up.
"""

import os

import pytest

from lab.backends.docker import engine as docker_engine
from lab.errors import LabError
from lab.owned.state import owner_label
from tests.conftest import REAL_CACHE_DIR

pytestmark = pytest.mark.integration

EXPECTED = {
    "xenial-ga": ("docker://18.9.7", "Ubuntu 16.04"),
    "bookworm": ("docker://20.10.", "Debian GNU/Linux 12"),
}


@pytest.fixture
def engine():
    if os.geteuid() != 0:
        pytest.skip("needs root: node containers, mounts")
    try:
        return docker_engine.docker_client(timeout=10)
    except LabError as exc:
        pytest.skip(f"no docker engine answers ({exc}); run `nodelab setup` first")


@pytest.mark.parametrize("target", list(EXPECTED))
def test_up_joins_a_ready_node_and_down_leaves_nothing(target, engine, tmp_path, monkeypatch):
    from lab.cluster.lab import Lab
    monkeypatch.setenv("NODELAB_STATE_DIR", str(tmp_path / "state"))
    if REAL_CACHE_DIR:                         # the run's real build cache, not the fast tests' empty one
        monkeypatch.setenv("NODELAB_CACHE_DIR", REAL_CACHE_DIR)
    else:
        monkeypatch.delenv("NODELAB_CACHE_DIR")
    lab = Lab(say=lambda m: None)
    try:
        node = lab.up(target, 1)[0]
        info = lab.kube().node(node.name).status.node_info
        runtime, os_image = EXPECTED[target]
        assert info.kubelet_version == "v1.20.2"
        assert info.container_runtime_version.startswith(runtime)
        assert info.os_image.startswith(os_image)
        assert lab.kube().condition(node.name).status == "True"
        # the node interface: PID 1 is the target's systemd, seen from the host and through testinfra
        assert open(f"/proc/{node.pid1_host_pid()}/comm").read().strip() == "systemd"
        inside = node.testinfra_host()
        assert inside.service("kubelet").is_running and inside.service("docker").is_running
        assert inside.package("systemd").version == node.package_versions(["systemd"])["systemd"]
        node.put_file("/tmp/nodelab-probe", "hello\n")
        assert node.get_file("/tmp/nodelab-probe") == b"hello\n"
        assert node.run("sleep 30", timeout=2, check=False).timed_out
    finally:
        removed = lab.down()
    label = f"nodelab.owner={owner_label()}"
    assert engine.containers.list(all=True, filters={"label": label}) == []
    assert engine.networks.list(filters={"label": label}) == []
    assert lab.state.resources() == []
    assert any(r.startswith("process kube-apiserver") for r in removed)
    assert not (tmp_path / "state" / "nodes").exists() or not any((tmp_path / "state" / "nodes").iterdir())
