"""The qemu backend: nodes are VMs that boot their target's own kernel.

Each VM boots the target's kernel (Ubuntu 16.04's 4.4, Debian 12's 6.1) on
an overlay of its cached disk image (lab.backends.qemu.disk), sits on the
lab's docker bridge through a tap (lab.backends.qemu.tap), and is reached
over SSH (lab.backends.qemu.ssh). What builds images, the lab network and
the sandbox image is the docker backend's: a VM image starts from the same
node image as a container node. No sandbox adapters: a VM's systemd is a
real machine's PID 1 with every capability.
"""

import gzip
import re
import shutil
import subprocess
from pathlib import Path

from lab import paths
from lab.backends.base import Backend, Capabilities
from lab.backends.docker.backend import JOURNAL_LINES, DockerBackend
from lab.backends.qemu import disk, machine, tap, vm
from lab.backends.qemu.ssh import SSHNode
from lab.errors import LabError
from lab.host import Check
from lab.owned.state import LabState, Resource
from lab.recipes import images
from lab.recipes.targets import TARGETS, Target

KUBELET_IN_NODE = "/opt/nodelab/kube/kubelet"   # the 9p share of the lab's Kubernetes binaries
ANSWER_S = 30   # a VM that cannot run `true` over SSH in this long has stopped answering
KERNEL_LINE = re.compile(r"\[\s*\d+\.\d+\] ")   # a console line the kernel wrote (its uptime first)


class QemuBackend(Backend):
    name = "qemu"
    capabilities = Capabilities(
        host_sees_node_processes=False,
        pid_capacity=("pid_max (the VM's kernel)", "pids cgroup (in the VM)"),
        own_kernel=True)
    kubelet_in_node = KUBELET_IN_NODE
    host_commands = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
                     "ssh": "openssh-client", "ssh-keygen": "openssh-client", "mkfs.ext4": "e2fsprogs",
                     "ip": "iproute2"}

    def __init__(self, state: LabState, say=print):
        self.state = state
        self.say = say
        self.docker = DockerBackend(state, say)   # engine, lab network, node images, sandbox image

    # -- host ---------------------------------------------------------------
    def prepare(self) -> str:
        return self.docker.prepare() + f"; {machine.QEMU} for VM nodes"

    def doctor(self) -> list[Check]:
        checks = self.docker.doctor()
        qemu = shutil.which(machine.QEMU)
        version = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.split("\n")[0] if qemu else ""
        checks.append(Check("qemu", bool(qemu), version or f"{machine.QEMU} missing (run `nodelab setup`)"))
        checks.append(Check("/dev/net/tun", Path("/dev/net/tun").exists(), "tap devices for VM networking"))
        probe = self._probe_dir() / "accel.json"
        checks.append(Check("accelerator", True, probe.read_text() if probe.exists() else
                            "chosen at the first VM boot: KVM if a bounded probe boot under KVM succeeds, else TCG"))
        sizing = machine.Sizing.from_environment()
        checks.append(Check("VM size", True, f"{sizing.memory_mib} MiB, {sizing.cpus} vCPUs per node "
                                             "(NODELAB_VM_MEMORY_MIB, NODELAB_VM_CPUS)"))
        return checks

    @classmethod
    def unavailable(cls, target: Target) -> str | None:
        if target.unavailable:
            return target.unavailable
        if not target.kernel:
            return f"target {target.name} names no kernel to boot"
        return None

    # -- images -------------------------------------------------------------
    def image(self, target: Target, force: bool = False) -> str:
        node_tag = self.docker.image(target)   # force rebuilds the VM layer only
        if force:
            shutil.rmtree(disk.directory(node_tag, target), ignore_errors=True)
        return str(disk.build(self.docker.client, self.state, target, node_tag, self.say).directory)

    def image_listing(self) -> list[dict]:
        rows = []
        for target in TARGETS.values():
            why = self.unavailable(target)
            if why:
                rows.append({"target": target.name, "image": "", "status": "unavailable: " + why,
                             "summary": target.summary})
                continue
            found = disk.cached(images.node_tag(target), target)
            status = (f"built: kernel {found.manifest['kernel_release']} in {found.manifest['built_seconds']} s"
                      if found else "not built")
            rows.append({"target": target.name, "image": str(found.directory) if found else "", "status": status,
                         "summary": target.summary})
        return rows

    def sandbox_image(self) -> str:
        return self.docker.sandbox_image()

    # -- nodes --------------------------------------------------------------
    def host_address(self) -> str:
        return self.docker.host_address()

    def _probe_dir(self) -> Path:
        return paths.state_dir() / "qemu"

    def start_node(self, name: str, target: Target, image: str, kube_bin_dir: Path,
                   kernel_args: tuple[str, ...] = ()) -> SSHNode:
        return vm.boot(self.state, self.docker, name, target, image, kube_bin_dir, self._probe_dir(), self.say,
                       kernel_args)

    def free_name(self, base: str, index: int) -> str:
        existing = {r.ref for r in self.state.resources("vm")}
        existing |= {c.name for c in self.docker.client.containers.list(all=True)}
        n = index + 1
        while f"{base}-{n}" in existing:
            n += 1
        return f"{base}-{n}"

    def node_address(self, node: SSHNode) -> str:
        return node.address

    def _record(self, name: str) -> Resource | None:
        return next((r for r in self.state.resources("vm") if r.ref == name), None)

    def attach(self, name: str) -> SSHNode:
        res = self._record(name)
        if res is None or not machine.running(res.detail.get("pid"), res.detail.get("start_time")):
            raise LabError(f"no VM node named {name}")
        return vm.node_of(name, res.detail)

    def nodes(self) -> list[SSHNode]:
        return [vm.node_of(r.ref, r.detail) for r in self.state.resources("vm")
                if r.detail.get("host_key") and machine.running(r.detail.get("pid"), r.detail.get("start_time"))]

    def remove_node(self, node: SSHNode) -> None:
        if isinstance(node, SSHNode):
            node.close()
        res = self._record(node.name)
        if res:
            vm.remove(self.state, res)

    # -- images into nodes, logs --------------------------------------------
    def load_image(self, node: SSHNode, tag: str) -> None:
        saved = subprocess.run(["docker", "save", tag], capture_output=True, timeout=600)
        if saved.returncode != 0:
            raise LabError(f"docker save {tag} failed: {saved.stderr.decode(errors='replace').strip()}")
        load = node.run(["docker", "load"], stdin=saved.stdout, timeout=600, check=False)
        if not load.ok:
            raise LabError(f"loading {tag} into {node.name} failed: {(load.stderr or load.stdout).strip()}")

    def collect_logs(self, node: SSHNode, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        saved = []
        journal = node.run(["journalctl", "--no-pager", "-o", "short-precise", "-n", str(JOURNAL_LINES)],
                           timeout=180, check=False).stdout
        path = directory / f"{node.name}-journal.txt.gz"
        path.write_bytes(gzip.compress(journal.encode()))
        saved.append(path)
        console = Path(node.details.get("console", ""))
        if console.is_file():
            path = directory / f"{node.name}-console.txt"
            path.write_text(vm.tail(console, 5000))
            saved.append(path)
        return saved

    def kernel_lockups(self, node: SSHNode) -> list[str]:
        console = Path(node.details.get("console", ""))
        return vm.lockups(console.read_text(errors="replace")) if console.is_file() else []

    def unanswering(self, node: SSHNode) -> str:
        res = node.run(["true"], timeout=ANSWER_S, check=False)
        if not (res.timed_out or res.rc == 255):   # it ran (even failing): the machine answers
            return ""
        console = Path(node.details.get("console", ""))
        last = next((line.strip() for line in reversed(vm.tail(console, 200).splitlines())
                     if KERNEL_LINE.match(line)), "none") if console.is_file() else "no console"
        return (f"{node.name} did not run `true` within {ANSWER_S} s over SSH ({(res.stderr or '').strip() or res.rc}); "
                f"its console's last kernel line: {last}")

    def reset(self, keep) -> list[str]:
        removed = []
        for res in self.state.removal_order():
            if keep(res):
                continue
            if res.kind == "vm":
                removed += vm.remove(self.state, res)
            elif res.kind == "link":
                if tap.delete(res.ref):
                    removed.append(f"tap {res.ref}")
                self.state.forget("link", res.ref)
        removed += vm.sweep(self.state)
        return removed
