"""The qemu process of a VM node, and which accelerator it runs under.

A node VM boots its target's kernel directly (-kernel/-initrd), on a
copy-on-write overlay of the cached disk image, with a virtio NIC on its tap,
a virtio-rng device (Ubuntu 16.04's 4.4 kernel otherwise waits minutes for
entropy before dockerd starts), and the lab's Kubernetes binaries and assets
shared read-only over 9p (mounted where a container node has them). Its
serial console goes to a file. The process is recorded in the lab state
(with its start time) before the VM can do anything.
"""

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab import paths
from lab.backends.qemu.disk import VMImage
from lab.errors import LabError
from lab.owned.state import process_start_time

QEMU = "qemu-system-x86_64"
PROBE_SECONDS = 30
# What a kernel prints once it has booted far enough to look for its root fs.
PROBE_REACHED = re.compile(r"VFS: Unable to mount root|Kernel panic - not syncing")


@dataclass(frozen=True)
class Sizing:
    memory_mib: int
    cpus: int

    @classmethod
    def from_environment(cls) -> "Sizing":
        """NODELAB_VM_MEMORY_MIB and NODELAB_VM_CPUS; defaults fit a 2-core, 24 GiB host
        with several VMs at once (an idle node's qemu holds ~1.5 GiB of its 2 GiB)."""
        try:
            return cls(int(os.environ.get("NODELAB_VM_MEMORY_MIB", "2048")), int(os.environ.get("NODELAB_VM_CPUS", "2")))
        except ValueError:
            raise LabError("NODELAB_VM_MEMORY_MIB and NODELAB_VM_CPUS must be whole numbers") from None


def accel_argv(accel: str, cpus: int) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host", "-smp", str(cpus)]
    return ["-accel", "tcg,thread=multi", "-smp", str(cpus)]


def argv(*, name: str, image: VMImage, overlay: Path, console: Path, pidfile: Path, tap: str, mac: str,
         cmdline: str, accel: str, sizing: Sizing, kube_bin_dir: Path) -> list[str]:
    args = [QEMU, "-name", f"nodelab-{name}", "-machine", "pc", *accel_argv(accel, sizing.cpus),
            "-m", str(sizing.memory_mib), "-display", "none", "-monitor", "none", "-no-reboot",
            "-serial", f"file:{console}", "-pidfile", str(pidfile),
            "-kernel", str(image.kernel), "-append", cmdline,
            "-drive", f"file={overlay},format=qcow2,if=virtio,cache=unsafe",
            "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac}",
            "-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-pci,rng=rng0",
            "-virtfs", f"local,path={kube_bin_dir},mount_tag=kube,security_model=none,readonly=on",
            "-virtfs", f"local,path={paths.asset('')},mount_tag=assets,security_model=none,readonly=on"]
    if image.initrd:
        args += ["-initrd", str(image.initrd)]
    return args


def overlay(image: VMImage, path: Path) -> None:
    """A qcow2 overlay on the cached disk: starting a node copies nothing."""
    proc = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk), "-F", "raw", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"qemu-img create failed: {proc.stderr.strip()}")


def start(args: list[str], log: Path) -> tuple[int, str | None]:
    with open(log, "ab") as out:
        try:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except FileNotFoundError:
            raise LabError(f"{QEMU}: not installed (run `nodelab setup --backend qemu`)") from None
    return proc.pid, process_start_time(proc.pid)


def running(pid: int | None, start_time: str | None) -> bool:
    if not pid:
        return False
    now = process_start_time(pid)
    if now is None or now != start_time:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(pid: int | None, start_time: str | None, grace: float = 5) -> bool:
    """Kill the VM (its disk is a throw-away overlay: no shutdown to wait for)."""
    if not running(pid, start_time):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and running(pid, start_time):
        time.sleep(0.1)
    if running(pid, start_time):
        os.kill(pid, signal.SIGKILL)
    return True


def ours(pid_dir: Path) -> list[int]:
    """qemu processes started with a pidfile under pid_dir (found after a crash lost their record)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(QEMU.encode()) and any(a.startswith(str(pid_dir).encode()) for a in args):
            found.append(int(proc.name))
    return found


def choose_accel(image: VMImage, probe_dir: Path, say=print) -> tuple[str, str]:
    """("kvm"|"tcg", why): KVM when a bounded probe boot of this kernel under KVM
    gets as far as looking for its root filesystem, else TCG. Kept in probe_dir
    per host kernel, qemu and guest kernel."""
    cache = probe_dir / "accel.json"
    qemu = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    key = f"{os.uname().release} | {qemu} | {image.manifest.get('kernel_release')}"
    try:
        known = json.loads(cache.read_text())
        if known.get("key") == key:
            return known["accel"], known["why"]
    except (OSError, ValueError):
        pass
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        accel, why = "tcg", "no usable /dev/kvm"
    else:
        say(f"probing KVM: booting {image.kernel.name} under -accel kvm for at most {PROBE_SECONDS} s")
        probe_dir.mkdir(parents=True, exist_ok=True)
        console = probe_dir / "kvm-probe-console.txt"
        console.unlink(missing_ok=True)
        args = [QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none", "-monitor", "none",
                "-no-reboot", "-serial", f"file:{console}", "-kernel", str(image.kernel),
                "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        started = time.monotonic()
        reached = False
        try:
            while time.monotonic() - started < PROBE_SECONDS and proc.poll() is None:
                if console.exists() and PROBE_REACHED.search(console.read_text(errors="replace")):
                    reached = True
                    break
                time.sleep(0.5)
        finally:   # a guest hung under KVM (what the probe is for) never outlives it, Ctrl-C included
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        reached = reached or (console.exists() and bool(PROBE_REACHED.search(console.read_text(errors="replace"))))
        seconds = time.monotonic() - started
        if reached:
            accel, why = "kvm", f"a probe boot under KVM reached the root-fs lookup in {seconds:.1f} s"
        else:
            err = (proc.stderr.read() or b"").decode(errors="replace").strip().splitlines()[-1:] if proc.stderr else []
            printed = len(console.read_text(errors="replace")) if console.exists() else 0
            accel, why = "tcg", (f"a probe boot under KVM did not reach the root-fs lookup within {PROBE_SECONDS} s "
                                 f"(console: {printed} bytes{'; qemu: ' + err[0] if err else ''}): "
                                 "software emulation (TCG)")
    probe_dir.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "accel": accel, "why": why}))
    return accel, why
