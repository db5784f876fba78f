"""The qemu backend's pieces that need no VM: addresses, qemu's command line,
the accelerator choice, and `down` after a crash."""

import json
import subprocess
import sys
import time

import pytest

from lab import backends
from lab.backends.qemu import disk, machine, tap
from lab.backends.qemu.backend import QemuBackend
from lab.owned.state import LabState, Resource, process_start_time


class FakeNetwork:
    id = "0123456789abcdef"

    def __init__(self, containers=()):
        self.attrs = {"Options": {}, "IPAM": {"Config": [{"Subnet": "172.30.0.0/24", "Gateway": "172.30.0.1"}]},
                      "Containers": {str(i): {"IPv4Address": f"{a}/24"} for i, a in enumerate(containers)}}

    def reload(self):
        pass


def test_vm_addresses_come_from_the_top_of_the_subnet_and_skip_what_is_taken(tmp_path):
    state = LabState(tmp_path)
    net = FakeNetwork(containers=["172.30.0.2", "172.30.0.254"])
    assert tap.bridge_of(net)[0] == "br-0123456789ab"
    assert tap.free_address(net, state) == "172.30.0.253/24"
    state.record(Resource("vm", "n1", "node", {"address": "172.30.0.253/24"}))
    assert tap.free_address(net, state) == "172.30.0.252/24"


def test_tap_names_fit_the_kernels_limit_and_differ_per_node():
    names = {tap.tap_name(f"nodelab-xenial-ga-{i}") for i in range(50)}
    assert len(names) == 50 and all(len(n) <= 15 for n in names)


def _image(tmp_path, initrd: bool) -> disk.VMImage:
    image = disk.VMImage(tmp_path / "img", "bookworm")
    image.directory.mkdir()
    (image.directory / "vmlinuz").write_bytes(b"k")
    if initrd:
        (image.directory / "initrd.img").write_bytes(b"i")
    return image


@pytest.mark.parametrize("initrd", [False, True])
def test_qemu_boots_the_kernel_directly_on_an_overlay_with_the_lab_shares_read_only(tmp_path, initrd):
    args = machine.argv(name="n1", image=_image(tmp_path, initrd), overlay=tmp_path / "o.qcow2",
                        console=tmp_path / "console.txt", pidfile=tmp_path / "qemu.pid", tap="nlt0", mac="52:54:00:0:0:1",
                        cmdline="root=/dev/vda", accel="tcg", sizing=machine.Sizing(1024, 2), kube_bin_dir=tmp_path)
    line = " ".join(args)
    assert f"-kernel {tmp_path}/img/vmlinuz" in line and ("-initrd" in line) == initrd
    assert f"file={tmp_path}/o.qcow2,format=qcow2" in line
    assert "tap,id=n0,ifname=nlt0,script=no" in line and "virtio-rng-pci" in line
    assert line.count("readonly=on") == 2 and "mount_tag=kube" in line and "mount_tag=assets" in line
    assert "-accel tcg,thread=multi -smp 2" in line and "-m 1024" in line


def test_without_a_usable_kvm_device_the_accelerator_is_tcg_and_the_choice_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(machine.os, "access", lambda path, mode: False)
    image = _image(tmp_path, False)
    assert machine.choose_accel(image, tmp_path / "probe") == ("tcg", "no usable /dev/kvm")
    kept = json.loads((tmp_path / "probe" / "accel.json").read_text())
    assert kept["accel"] == "tcg"
    monkeypatch.setattr(machine.os, "access", lambda path, mode: pytest.fail("the kept choice is not re-probed"))
    assert machine.choose_accel(image, tmp_path / "probe")[0] == "tcg"


def test_vm_sizes_are_settings_and_bad_ones_are_refused(monkeypatch):
    monkeypatch.setenv("NODELAB_VM_MEMORY_MIB", "3072")
    assert machine.Sizing.from_environment() == machine.Sizing(3072, 2)
    monkeypatch.setenv("NODELAB_VM_CPUS", "two")
    with pytest.raises(Exception, match="whole numbers"):
        machine.Sizing.from_environment()


def test_down_stops_a_recorded_vm_process_and_forgets_it(tmp_path):
    """A VM whose run crashed: its record is all `down` has. A stand-in process
    (sleep) plays the qemu process: reset must stop it by PID and start time."""
    state = LabState(tmp_path / "state")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        node_dir = tmp_path / "state" / "nodes" / "n1"
        node_dir.mkdir(parents=True)
        state.record(Resource("vm", "n1", "node", {"pid": proc.pid, "start_time": process_start_time(proc.pid),
                                                   "dir": str(node_dir), "tap": "nltnonexistent"}))
        removed = QemuBackend(state).reset(lambda r: False)
        assert proc.wait(timeout=10) is not None
        assert any(r.startswith("vm n1") for r in removed)
        assert state.resources("vm") == [] and not node_dir.exists()
    finally:
        proc.kill()


def test_a_pid_reused_by_another_process_is_never_signalled(tmp_path):
    state = LabState(tmp_path / "state")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state.record(Resource("vm", "n1", "node", {"pid": proc.pid, "start_time": "not-its-start-time"}))
        QemuBackend(state).reset(lambda r: False)
        assert proc.poll() is None
    finally:
        proc.kill()


def test_down_resets_vms_before_the_network_they_sit_on():
    # vagrant's workshop machines first (destroyed by vagrant), then the lab's own VMs, then containers.
    assert [b.name for b in backends.every(state=None)] == ["vagrant", "qemu", "docker"]


def test_the_host_key_is_read_off_a_console_line_that_systemd_coloured_after_it():
    from lab.backends.qemu.vm import HOSTKEY_LINE
    key = "AAAAC3NzaC1lZDI1NTE5AAAAIN+vKoJbYmTXZ93lDbAM+nIh/IPaIYlQdMzYg3NWeP5h"
    line = f"[   20.9] nodelab-vm-init[212]: nodelab-hostkey ssh-ed25519 {key}\x1b[[0;32m  OK  \x1b[0m] Started"
    found = HOSTKEY_LINE.search(line)
    assert (found.group(1), found.group(2)) == ("ssh-ed25519", key)
    # A kernel message printed into the middle of the line: no key, the wait goes on.
    cut = f"nodelab-hostkey ssh-ed25519 {key[:30]}\n[   21.0] e1000: eth0 NIC Link is Up\n{key[30:]}"
    assert HOSTKEY_LINE.search(cut) is None


def test_a_guest_kernels_soft_lockups_and_rcu_stalls_are_read_off_its_console_and_nothing_else():
    from lab.backends.qemu import vm
    console = """[    0.1] NMI watchdog: Shutting down hard lockup detector on all cpus
[    0.2] rcu: Preemptible hierarchical RCU implementation.
[  129.99] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
[  132.69] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [runc:1590]
[   80.10] NMI watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [kswapd0:33]
[   90.00] INFO: rcu_sched self-detected stall on CPU
[   95.00] Watchdog detected hard LOCKUP on cpu 1
[  100.00] INFO: task kubelet:900 blocked for more than 120 seconds."""
    assert vm.lockups(console) == [line.strip() for line in console.splitlines()[2:7]]
    assert vm.lockups("[ 1.0] Linux version 6.1.0-27-amd64") == []


def test_a_vm_that_runs_no_command_is_said_to_have_stopped_answering_with_its_consoles_last_kernel_line(tmp_path):
    from types import SimpleNamespace as NS
    console = tmp_path / "console.txt"
    console.write_text("[   92.70] docker0: port 3(veth53f2ef7) entered disabled state\n"
                       "[  OK  ] Reached target Multi-User System.\n")
    answers = []

    class Node:
        name, details = "nodelab-cookie-bookworm-1", {"console": str(console)}

        def run(self, argv, timeout=60, check=True):
            answers.append((argv, timeout))
            return [NS(timed_out=True, rc=124, stderr="ssh: no answer"), NS(timed_out=False, rc=0, stderr=""),
                    NS(timed_out=False, rc=126, stderr="sh: cannot fork")][len(answers) - 1]
    backend = QemuBackend.__new__(QemuBackend)
    assert backend.unanswering(Node()) == (
        "nodelab-cookie-bookworm-1 did not run `true` within 30 s over SSH (ssh: no answer); its console's last "
        "kernel line: [   92.70] docker0: port 3(veth53f2ef7) entered disabled state")
    assert answers == [(["true"], 30)]
    assert backend.unanswering(Node()) == ""     # it answered
    assert backend.unanswering(Node()) == ""     # it answered, with a failure of its own: a machine that runs
