"""A VM node's life: boot it (overlay, tap, qemu, host key, systemd), reach it, remove it.

Everything is recorded in the lab state before it exists, and whatever
fails half-way is removed before the error is raised, so `down` only ever
meets what a crash left (and sweeps that too: `sweep`).
"""

import hashlib
import re
import shutil
import time
from pathlib import Path

from lab import paths
from lab.backends.qemu import disk, machine, tap
from lab.backends.qemu.ssh import SSHNode, lab_key, public_blob
from lab.errors import LabError
from lab.owned.state import LabState, Resource
from lab.recipes.targets import Target

BOOT_TIMEOUT = 240          # qemu start -> systemd running, under TCG
# nodelab-vm-init's console line; systemd's coloured status may follow on the same line.
# An ed25519 public key is always 68 base64 characters: a line cut by a
# kernel message does not match, and the wait goes on.
HOSTKEY_LINE = re.compile(r"nodelab-hostkey (ssh-ed25519) (AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43})")

# What a guest kernel prints when it stops making progress: 4.4's "NMI
# watchdog: BUG: soft lockup - CPU#0 stuck for 22s!", 6.1's "watchdog: BUG:
# soft lockup ...", RCU's "rcu_sched self-detected stall on CPU" / "rcu_preempt
# detected stalls on CPUs/tasks", the hard-lockup watchdog's. Seen under TCG:
# a 6.1 guest with both vCPUs stuck in signal delivery for minutes.
LOCKUP_LINE = re.compile(r"BUG: soft lockup|detected stalls? on CPU|hard LOCKUP on cpu")


def lockups(console_text: str) -> list[str]:
    """The console's lines that report a kernel lockup or RCU stall (LOCKUP_LINE)."""
    return [line.strip() for line in console_text.splitlines() if LOCKUP_LINE.search(line)]


def boot(state: LabState, docker, name: str, target: Target, image: str, kube_bin_dir: Path, probe_dir: Path,
         say=print, kernel_args: tuple[str, ...] = ()) -> SSHNode:
    """Start the VM `name` and wait until its systemd runs; recorded before anything exists, removed if it fails."""
    vm_image = disk.VMImage(Path(image), target.name)
    network = docker.client.networks.get(docker.network()[0])
    bridge, _, gateway = tap.bridge_of(network)
    node_dir = paths.state_dir() / "nodes" / name
    address = tap.free_address(network, state)
    mac = "52:54:00:" + ":".join(hashlib.sha256(name.encode()).hexdigest()[i:i + 2] for i in (0, 2, 4))
    accel, why = machine.choose_accel(vm_image, probe_dir, say)
    sizing = machine.Sizing.from_environment()
    detail = {"target": target.name, "dir": str(node_dir), "address": address, "mac": mac, "accel": accel,
              "accel_why": why, "memory_mib": sizing.memory_mib, "cpus": sizing.cpus,
              "kernel_release": vm_image.manifest["kernel_release"], "image": image,
              "kernel_args": list(kernel_args)}
    # Recorded before any of it exists: `down` removes what a crash leaves.
    state.record(Resource("dir", str(node_dir), "node-dir", {"node": name}))
    state.record(Resource("vm", name, "node", detail))
    try:
        return _boot(state, name, target, vm_image, kube_bin_dir, detail, gateway, bridge, say)
    except BaseException:
        remove(state, Resource("vm", name, "node", detail))   # no half-booted VM stays behind
        raise


def _boot(state: LabState, name: str, target: Target, vm_image: disk.VMImage, kube_bin_dir: Path, detail: dict,
          gateway: str, bridge: str, say) -> SSHNode:
    node_dir, address, key = Path(detail["dir"]), detail["address"], lab_key(paths.state_dir() / "ssh")
    node_dir.mkdir(parents=True, exist_ok=True)
    machine.overlay(vm_image, node_dir / "disk.qcow2")
    detail["tap"] = tap.create(state, name, bridge)
    cmdline = " ".join(["root=/dev/vda", "rw", "console=ttyS0", "panic=-1", "net.ifnames=0",
                        "rng_core.default_quality=1000", *target.kernel_cmdline, *detail["kernel_args"],
                        f"nodelab.name={name}", f"nodelab.ip={address}", f"nodelab.gw={gateway}",
                        f"nodelab.key={public_blob(key)}"])
    console = node_dir / "console.txt"
    console.unlink(missing_ok=True)   # never a key an earlier boot printed
    args = machine.argv(name=name, image=vm_image, overlay=node_dir / "disk.qcow2", console=console,
                        pidfile=node_dir / "qemu.pid", tap=detail["tap"], mac=detail["mac"], cmdline=cmdline,
                        accel=detail["accel"],
                        sizing=machine.Sizing(detail["memory_mib"], detail["cpus"]), kube_bin_dir=kube_bin_dir)
    started = time.monotonic()
    detail["pid"], detail["start_time"] = machine.start(args, node_dir / "qemu.log")
    detail["cmdline"] = cmdline
    state.record(Resource("vm", name, "node", detail))
    host_key = _wait_for_host_key(name, detail, console, started)
    detail["host_key"] = host_key
    state.record(Resource("vm", name, "node", detail))
    (node_dir / "known_hosts").write_text(f"{address.split('/')[0]} {host_key}\n")
    node = node_of(name, detail)
    node.wait_for_systemd(started + BOOT_TIMEOUT, what="VM", waited=f"{BOOT_TIMEOUT} s after qemu started")
    detail["boot_seconds"] = round(time.monotonic() - started, 1)
    state.record(Resource("vm", name, "node", detail))
    node.details["boot_seconds"] = detail["boot_seconds"]
    say(f"VM {name}: kernel {detail['kernel_release']} under {detail['accel']}, {address}, "
        f"systemd running {detail['boot_seconds']:.0f} s after qemu started")
    return node


def _wait_for_host_key(name: str, detail: dict, console: Path, started: float) -> str:
    while time.monotonic() - started < BOOT_TIMEOUT:
        if not machine.running(detail["pid"], detail["start_time"]):
            raise LabError(f"VM {name} stopped while booting; console:\n{tail(console)}\n"
                           f"qemu: {tail(console.with_name('qemu.log'), 5)}")
        found = HOSTKEY_LINE.search(console.read_text(errors="replace") if console.exists() else "")
        if found:
            return f"{found.group(1)} {found.group(2)}"
        time.sleep(0.5)
    raise LabError(f"VM {name} printed no host key within {BOOT_TIMEOUT} s; console:\n{tail(console)}")


def node_of(name: str, detail: dict) -> SSHNode:
    node_dir = Path(detail["dir"])
    details = {k: detail.get(k) for k in ("accel", "accel_why", "memory_mib", "cpus", "kernel_release",
                                          "cmdline", "boot_seconds")}
    details["console"] = str(node_dir / "console.txt")
    details["sandbox"] = "none: the VM's systemd is a real machine's PID 1"
    return SSHNode(name, detail["address"].split("/")[0], lab_key(paths.state_dir() / "ssh"),
                   detail.get("host_key", ""), node_dir / "known_hosts", target=detail["target"], details=details)


def remove(state: LabState, res: Resource) -> list[str]:
    """Kill the VM (by PID and start time), delete its tap and directory, forget them."""
    removed = []
    if machine.stop(res.detail.get("pid"), res.detail.get("start_time")):
        removed.append(f"vm {res.ref} (pid {res.detail.get('pid')})")
    name = res.detail.get("tap") or tap.tap_name(res.ref)
    if tap.delete(name):
        removed.append(f"tap {name}")
    state.forget("link", name)
    node_dir = Path(res.detail.get("dir", paths.state_dir() / "nodes" / res.ref))
    if node_dir.exists() and paths.state_dir() in node_dir.parents:
        shutil.rmtree(node_dir, ignore_errors=True)
        removed.append(f"dir {node_dir}")
    state.forget("dir", str(node_dir))
    state.forget("vm", res.ref)
    return removed


def sweep(state: LabState) -> list[str]:
    """What a crash left out of the state: qemu processes of this lab's node
    directories, taps with its alias (kept: the VMs the state still records)."""
    removed = []
    kept = {r.ref for r in state.resources("vm")}
    for pid in machine.ours(paths.state_dir() / "nodes"):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        except OSError:
            continue   # gone meanwhile
        if not any(f"/nodes/{name}/" in args for name in kept):
            machine.stop(pid, machine.process_start_time(pid))
            removed.append(f"vm process {pid} (by its pidfile)")
    kept_taps = {tap.tap_name(name) for name in kept}
    for name in tap.labelled():
        if name not in kept_taps:
            tap.delete(name)
            removed.append(f"tap {name} (by alias)")
    return removed


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
