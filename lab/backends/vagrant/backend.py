"""The vagrant backend: nodes are workshop VMs that `vagrant up` booted from the lab's boxes.

For workshops (README, Workshops): `nodelab box build TARGET` turns the
target's VM image into a libvirt box (lab.backends.vagrant.box), the
repository's Vagrantfile defines one machine per target, named after it,
and `vagrant up` boots them under libvirt, each on its target's own kernel.
The lab does not start these VMs: it adopts a running one as a node. It
finds the machine in the workshop directory (VAGRANT_CWD, else the current
one), asks libvirt for its address and console, checks its SSH host key
against the console as for any VM node, copies in kubelet and the lab's node
scripts (which the qemu backend shares over 9p) and names it; the cluster
then joins it like any node. A node is never reused once a scenario broke
it: removing it destroys the machine (`vagrant destroy`), and `vagrant up`
makes a fresh one. Images, SSH, logs and lockups are the qemu backend's.
"""

import io
import json
import os
import re
import shutil
import tarfile
import time
from pathlib import Path
from xml.etree import ElementTree

from lab import paths, shell
from lab.backends.qemu.backend import QemuBackend
from lab.backends.qemu.disk import VMImage
from lab.backends.qemu.ssh import SSHNode, lab_key
from lab.backends.qemu.vm import BOOT_TIMEOUT, HOSTKEY_LINE
from lab.backends.vagrant import box
from lab.errors import LabError
from lab.owned import daemons
from lab.owned.state import Resource
from lab.host import Check
from lab.recipes.targets import TARGETS, Target

KIND = "vagrant-machine"
ASSETS_IN_NODE = "/usr/local/lib/nodelab"     # where the qemu backend's 9p share puts the lab's node scripts


class VagrantNode(SSHNode):
    backend = "vagrant"


class VagrantBackend(QemuBackend):
    name = "vagrant"
    host_commands = {**QemuBackend.host_commands, "vagrant": "vagrant", "virsh": "libvirt-clients",
                     "libvirtd": "libvirt-daemon-system", "dnsmasq": "dnsmasq-base",
                     "debugfs": "e2fsprogs", box.PLUGIN: "vagrant-libvirt"}

    # -- host ---------------------------------------------------------------
    def prepare(self) -> str:
        return f"{super().prepare()}; libvirt {self._libvirt()} for vagrant-libvirt"

    def doctor(self) -> list[Check]:
        checks = super().doctor()
        try:
            version = box.virsh("version", "--daemon", check=False)
            answers = version.returncode == 0
            said = version.stdout.strip().splitlines()[-1] if answers else \
                "libvirtd does not answer (`nodelab box build` starts it)"
        except LabError as exc:
            answers, said = False, str(exc)
        checks.append(Check("libvirt", answers, said))
        boxes = [t for t in TARGETS if (box.installed(t) / "box.img").exists()]
        checks.append(Check("boxes", True, ", ".join(box.name(t) for t in boxes) if boxes else
                            "none yet (`nodelab box build TARGET`)"))
        return checks

    def _libvirt(self) -> str:
        """libvirt's version, starting virtlogd and libvirtd (recorded, stopped by `down`) if none answers."""
        version = box.virsh("version", "--daemon", check=False)
        if version.returncode != 0:
            log_dir = paths.state_dir() / "logs"
            for daemon in ("virtlogd", "libvirtd"):
                if not daemons.live(self.state, daemon):
                    daemons.start(self.state, daemon, [daemon], log_dir / f"{daemon}.log")
            deadline = time.monotonic() + 30
            while (version := box.virsh("version", "--daemon", check=False)).returncode != 0:
                if time.monotonic() > deadline:
                    raise LabError(f"libvirtd did not answer in 30 s: {version.stderr.strip()}")
                time.sleep(0.5)
        found = re.search(r"Running against daemon: ([\d.]+)", version.stdout)
        return found.group(1) if found else "answers"

    # -- images -------------------------------------------------------------
    def image(self, target: Target, force: bool = False) -> str:
        """The box a workshop machine of `target` boots from; `build_box` makes it, not a run."""
        return box.name(target.name)

    def build_box(self, target: Target, kube_bin_dir: Path) -> str:
        """The target's VM image (the qemu backend's) as a box with this kubelet, added to vagrant."""
        vm_image = VMImage(Path(super().image(target)), target.name)
        return box.add(box.build(vm_image, target, kube_bin_dir, self._probe_dir(), self.say), target.name)

    # -- nodes --------------------------------------------------------------
    def start_node(self, name: str, target: Target, image: str, kube_bin_dir: Path,
                   kernel_args: tuple[str, ...] = ()) -> SSHNode:
        if kernel_args:
            raise LabError(f"this run boots its node with {' '.join(kernel_args)}; a workshop machine boots "
                           "with its box's command line: use --backend qemu")
        found = workshop_machine(target.name)
        taken = next((r for r in self.state.resources(KIND) if r.detail.get("domain") == found["domain"]), None)
        if taken:
            raise LabError(f"the workshop machine {target.name} already serves as node {taken.ref}")
        detail = {**found, "target": target.name, "dir": str(paths.state_dir() / "nodes" / name)}
        self.state.record(Resource(KIND, name, "node", detail))
        try:
            node = self._adopt(name, detail, kube_bin_dir)
        except BaseException:
            self.state.forget(KIND, name)
            shutil.rmtree(detail["dir"], ignore_errors=True)   # its known_hosts: the machine stays the user's
            raise
        return node

    def _adopt(self, name: str, detail: dict, kube_bin_dir: Path) -> SSHNode:
        started = time.monotonic()
        console = Path(detail["console"])
        found = HOSTKEY_LINE.findall(console.read_text(errors="replace")) if console.is_file() else []
        if not found:
            raise LabError(f"the workshop machine {detail['machine']} printed no host key on its console "
                           f"{console} (is it booted from a nodelab box?)")
        detail["host_key"] = " ".join(found[-1])
        Path(detail["dir"]).mkdir(parents=True, exist_ok=True)
        (Path(detail["dir"]) / "known_hosts").write_text(f"{detail['address']} {detail['host_key']}\n")
        self.state.record(Resource(KIND, name, "node", detail))
        node = node_of(name, detail)
        node.wait_for_systemd(started + BOOT_TIMEOUT, what="workshop machine", waited=f"{BOOT_TIMEOUT} s")
        node.run(["sh", "-c", 'hostname "$1" && echo "$1" > /etc/hostname && '
                              'printf "127.0.0.1 localhost\\n127.0.1.1 %s\\n" "$1" > /etc/hosts', "-", name])
        # The box carries the lab's kubelet (lab.backends.vagrant.box); another build (--kube-binaries) is copied.
        stamp = node.run(["cat", box.KUBE_STAMP], check=False).stdout.strip()
        if stamp != kube_bin_dir.name:
            self.say(f"copying kubelet into the workshop machine {detail['machine']} (its box has {stamp or 'none'})")
            node.run(["sh", "-c", f'mkdir -p {box.KUBE_IN_NODE} && tar -x -C {box.KUBE_IN_NODE} && echo "$1" > '
                                  f'{box.KUBE_STAMP}', "-", kube_bin_dir.name],
                     stdin=_tar(kube_bin_dir, only=("kubelet",)), timeout=600)
        node.run(["sh", "-c", f"mkdir -p {ASSETS_IN_NODE} && tar -x -C {ASSETS_IN_NODE}"], stdin=_tar(paths.asset("")))
        detail["kernel_release"] = node.run(["uname", "-r"]).stdout.strip()
        self.state.record(Resource(KIND, name, "node", detail))
        self.say(f"workshop machine {detail['machine']} ({detail['domain']}): kernel {detail['kernel_release']}, "
                 f"{detail['address']}, adopted as node {name} in {time.monotonic() - started:.0f} s")
        return node_of(name, detail)

    def free_name(self, base: str, index: int) -> str:
        # Node directories (state/nodes/NAME) are shared with the qemu backend's VMs.
        existing = {r.ref for r in self.state.resources(KIND)} | {r.ref for r in self.state.resources("vm")}
        n = index + 1
        while f"{base}-{n}" in existing:
            n += 1
        return f"{base}-{n}"

    def attach(self, name: str) -> SSHNode:
        res = next((r for r in self.state.resources(KIND) if r.ref == name), None)
        if res is None or _domstate(res.detail["domain"]) != "running":
            raise LabError(f"no workshop machine serves as node {name}")
        return node_of(name, res.detail)

    def nodes(self) -> list[SSHNode]:
        return [node_of(r.ref, r.detail) for r in self.state.resources(KIND)
                if r.detail.get("host_key") and _domstate(r.detail["domain"]) == "running"]

    def remove_node(self, node: SSHNode) -> None:
        if isinstance(node, SSHNode):
            node.close()
        res = next((r for r in self.state.resources(KIND) if r.ref == node.name), None)
        if res:
            _destroy(self.state, res)

    def reset(self, keep) -> list[str]:
        """Destroy the machines the lab adopted; one vagrant cannot destroy stays recorded
        (a later `down` tries again) and does not stop the rest of `down`."""
        removed = []
        for res in self.state.resources(KIND):
            if keep(res):
                continue
            try:
                removed += _destroy(self.state, res)
            except LabError as exc:
                self.say(f"[yellow]{exc}[/yellow]")
        return removed


def workshop_dir() -> Path:
    """Where the workshop's Vagrantfile is: vagrant's own VAGRANT_CWD, else the current directory."""
    return Path(os.environ.get("VAGRANT_CWD") or os.getcwd()).resolve()


def workshop_machine(target: str) -> dict:
    """The running machine `target` of the workshop directory, made from the lab's box:
    its libvirt domain, address and console file."""
    where = workshop_dir()
    data = where / ".vagrant" / "machines" / target / "libvirt"
    hint = f"`vagrant up {target}` in {where} first (README, Workshops)"
    if not (where / "Vagrantfile").is_file():
        raise LabError(f"no Vagrantfile in {where}: run nodelab where the workshop's Vagrantfile is, or set VAGRANT_CWD")
    try:
        domain = (data / "id").read_text().strip()
        made_from = json.loads((data / "box_meta").read_text()).get("name")
    except (OSError, ValueError):
        raise LabError(f"no workshop machine {target} in {where}: {hint}") from None
    if made_from != box.name(target):
        raise LabError(f"the machine {target} in {where} is not made from the box {box.name(target)}: {made_from}")
    if _domstate(domain) != "running":
        raise LabError(f"the workshop machine {target} in {where} is not running: {hint}")
    leases = box.virsh("domifaddr", domain, "--source", "lease").stdout
    address = re.search(r"ipv4\s+([\d.]+)/", leases)
    if not address:
        raise LabError(f"libvirt knows no address of the workshop machine {target} yet: {leases.strip()}")
    xml = ElementTree.fromstring(box.virsh("dumpxml", domain).stdout)
    console = xml.find("./devices/serial[@type='file']/source")
    if console is None:
        raise LabError(f"the workshop machine {target} has no serial console in a file (the repository's "
                       "Vagrantfile sets one): the lab reads its host key there")
    memory = xml.find("./memory")
    factor = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}.get(memory.get("unit", "KiB"), 1 / 1024) if memory is not None else 0
    return {"machine": target, "workdir": str(where), "domain": domain, "address": address.group(1),
            "console": console.get("path"), "accel": "kvm" if xml.get("type") == "kvm" else "tcg",
            "memory_mib": int(int(memory.text) * factor) if memory is not None else 0,
            "cpus": int(xml.findtext("./vcpu") or 0)}


def node_of(name: str, detail: dict) -> SSHNode:
    details = {k: detail.get(k) for k in ("machine", "domain", "workdir", "console", "kernel_release", "accel",
                                          "memory_mib", "cpus")}
    details["sandbox"] = "none: the VM's systemd is a real machine's PID 1"
    return VagrantNode(name, detail["address"], lab_key(paths.state_dir() / "ssh"), detail.get("host_key", ""),
                       Path(detail["dir"]) / "known_hosts", target=detail["target"], details=details)


def _destroy(state, res: Resource) -> list[str]:
    """`vagrant destroy -f` the machine a node was (its disk goes with it), and forget the node."""
    removed = []
    machine, workdir = res.detail["machine"], res.detail["workdir"]
    if _domstate(res.detail["domain"]) != "missing":
        # In the machine's own directory, whatever VAGRANT_CWD or the machines the
        # Vagrantfile defines today say in this shell.
        env = {**os.environ, "VAGRANT_CWD": workdir, "NODELAB_WORKSHOP_TARGETS": machine}
        shell.run(["vagrant", "destroy", "-f", machine], cwd=workdir, env=env, timeout=300)
        removed.append(f"workshop machine {machine} (vagrant destroy)")
    Path(res.detail["console"]).unlink(missing_ok=True)   # the next machine's console starts empty
    node_dir = Path(res.detail["dir"])
    if node_dir.exists() and paths.state_dir() in node_dir.parents:
        shutil.rmtree(node_dir, ignore_errors=True)
    state.forget(KIND, res.ref)
    return removed


def _tar(directory: Path, only: tuple[str, ...] | None = None) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for path in sorted(directory.iterdir()):
            if only is None or path.name in only:
                tar.add(path, arcname=path.name)
    return data.getvalue()


def _domstate(domain: str) -> str:
    """libvirt's state of the domain ("running", "shut off", ...), "missing" when libvirt
    has no such domain; an error when libvirt does not answer (never taken for "gone")."""
    proc = box.virsh("domstate", domain, check=False)
    if proc.returncode == 0:
        return proc.stdout.strip()
    if "failed to get domain" in proc.stderr or "Domain not found" in proc.stderr:
        return "missing"
    raise LabError(f"libvirt does not answer about the workshop machine {domain}: {proc.stderr.strip()} "
                   "(`nodelab --backend vagrant setup` starts libvirtd)")

