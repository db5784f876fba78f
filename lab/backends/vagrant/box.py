"""Vagrant boxes of the lab's VM images, for workshops under vagrant-libvirt.

A box is a target's VM image (lab.backends.qemu.disk) in the form
vagrant-libvirt takes: `box.img` (the disk as qcow2), `metadata.json`, and
a Vagrantfile that boots the target's own kernel directly, as the qemu
backend does (kernel and initrd travel in the box). libvirt's qemu runs as
`libvirt-qemu`, which cannot read a box unpacked under root's ~/.vagrant.d:
the box's Vagrantfile copies its kernel into libvirt's image directory, named
by its content, where vagrant-libvirt puts the box's disk too.
The VM takes its identity from the kernel command line (nodelab-vm-init):
its name, the lab's SSH key, and no address, so it asks the management
network's DHCP. Vagrant logs in as root with the lab's key.
A box is built for this host and this lab (its key, its accelerator): it is
kept in the cache, keyed by the VM image, and added as `nodelab/TARGET`.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from lab import paths, shell
from lab.errors import LabError
from lab.backends.qemu import disk, machine
from lab.backends.qemu.ssh import lab_key, public_blob
from lab.recipes.targets import Target

LIBVIRT = "qemu:///system"                          # the libvirt vagrant-libvirt uses by default
LIBVIRT_IMAGES = Path("/var/lib/libvirt/images")   # the default storage pool: box volumes, staged kernels
STAGED_PREFIX = "nodelab-box-"
KUBE_IN_NODE = "/opt/nodelab/kube"        # where the qemu backend's 9p share puts the binaries
KUBE_STAMP = f"{KUBE_IN_NODE}/.build"      # which of the lab's builds the kubelet there is
# vagrant-libvirt brings no command: the host has it when its gem is there (lab.host checks patterns).
PLUGIN = "/usr/share/rubygems-integration/all/gems/vagrant-libvirt-*"


def name(target: str) -> str:
    return f"nodelab/{target}"


def cmdline(target: Target, key_blob: str) -> str:
    """What the box boots with: the qemu backend's command line without an address."""
    return " ".join(["root=/dev/vda", "rw", "console=ttyS0", "panic=-1", "net.ifnames=0",
                     "rng_core.default_quality=1000", *target.kernel_cmdline,
                     f"nodelab.name={target.name}", f"nodelab.key={key_blob}"])


def vagrantfile(target: Target, image: disk.VMImage, accel: str, key: Path) -> str:
    digest = hashlib.sha256(image.kernel.read_bytes()).hexdigest()[:12]
    stage = [("kernel", "vmlinuz", f"{STAGED_PREFIX}{target.name}-{digest}-vmlinuz")]
    if image.initrd:
        stage.append(("initrd", "initrd.img", f"{STAGED_PREFIX}{target.name}-{digest}-initrd.img"))
    staging = "\n".join(
        f'    staged = "{LIBVIRT_IMAGES / staged}"\n'
        f'    FileUtils.cp(File.join(__dir__, "{inside}"), staged) unless File.exist?(staged)\n'
        f"    libvirt.{option} = staged" for option, inside, staged in stage)
    sizing = machine.Sizing.from_environment()
    return f"""# Made by `nodelab box build {target.name}` from the lab's VM image {image.directory.name}
# ({image.manifest.get('kernel_release')}): boots the target's own kernel, as the qemu backend does.
require "fileutils"
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", disabled: true   # the lab copies in what a node needs
  config.ssh.username = "root"
  config.ssh.private_key_path = "{key}"
  config.ssh.insert_key = false
  config.ssh.sudo_command = "%c"   # root already; the image has no sudo
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "{'kvm' if accel == 'kvm' else 'qemu'}"
    libvirt.memory = {sizing.memory_mib}
    libvirt.cpus = {sizing.cpus}
    libvirt.graphics_type = "none"
    libvirt.video_type = "none"
{staging}
    libvirt.cmd_line = "{cmdline(target, public_blob(key))}"
  end
end
"""


def build(image: disk.VMImage, target: Target, kube_bin_dir: Path, probe_dir: Path, say=print) -> Path:
    """The box file of this VM image with this kubelet (built if not cached): cache/boxes/TARGET-KEY.box."""
    key = lab_key(paths.state_dir() / "ssh")
    accel, _ = machine.choose_accel(image, probe_dir, say)
    text = vagrantfile(target, image, accel, key)
    # Keyed by the VM image, the kubelet's build, the box's Vagrantfile and this recipe.
    inputs = f"{image.directory.name}\n{kube_bin_dir.name}\n{text}\n{Path(__file__).read_text()}"
    digest = hashlib.sha256(inputs.encode()).hexdigest()[:12]
    out = paths.cache_dir() / "boxes" / f"{target.name}-{digest}.box"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    say(f"writing the {target.name} box from {image.directory} (the disk as qcow2, kernel, Vagrantfile)")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".build-{target.name}-") as work:
        work = Path(work)
        raw = work / "disk.raw"
        shell.run(["cp", "--sparse=always", str(image.disk), str(raw)], timeout=600)
        _without_shares(raw, work, kube_bin_dir)
        shell.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(work / "box.img")], timeout=900)
        raw.unlink()
        (work / "metadata.json").write_text(json.dumps({"provider": "libvirt", "format": "qcow2",
                                                        "virtual_size": int(disk.DISK_SIZE.rstrip("G"))}))
        (work / "Vagrantfile").write_text(f"{text}# {out.name}: what `add` compares with the box vagrant has\n")
        shutil.copy2(image.kernel, work / "vmlinuz")
        if image.initrd:
            shutil.copy2(image.initrd, work / "initrd.img")
        partial = work / "box.tar"
        with tarfile.open(partial, "w") as tar:   # uncompressed: the qcow2 holds only what is used
            for member in ("metadata.json", "Vagrantfile", "box.img", "vmlinuz", "initrd.img"):
                if (work / member).exists():
                    tar.add(work / member, arcname=member)
        for older in out.parent.iterdir():   # this target's earlier boxes (not xenial-ga's for xenial)
            if re.fullmatch(rf"{re.escape(target.name)}-[0-9a-f]{{12}}\.box", older.name):
                older.unlink()
        partial.replace(out)
    return out


def _without_shares(raw: Path, work: Path, kube_bin_dir: Path) -> None:
    """A box has no 9p shares: drop them from the image's /etc/fstab (a failed mount
    leaves systemd `degraded`) and put the lab's kubelet where the share would be,
    with a stamp naming its build (KUBE_STAMP): copying 110 MB into a VM under TCG
    takes 1.5 min at every adoption. The lab's node scripts are copied in then."""
    fstab = shell.run(["debugfs", "-R", "cat /etc/fstab", str(raw)], timeout=60).stdout
    (work / "fstab").write_text("".join(line + "\n" for line in fstab.splitlines() if " 9p " not in line))
    (work / "stamp").write_text(kube_bin_dir.name + "\n")
    requests = ["rm /etc/fstab", f"write {work / 'fstab'} /etc/fstab",
                f"write {kube_bin_dir / 'kubelet'} {KUBE_IN_NODE}/kubelet", f"write {work / 'stamp'} {KUBE_STAMP}",
                f"set_inode_field {KUBE_IN_NODE}/kubelet mode 0100755"]
    for request in requests:
        shell.run(["debugfs", "-w", "-R", request, str(raw)], timeout=120)
    # debugfs says a failed request on stderr and exits 0: read back what must be there.
    listed = shell.run(["debugfs", "-R", f"ls -l {KUBE_IN_NODE}", str(raw)], timeout=60).stdout
    size = (kube_bin_dir / "kubelet").stat().st_size
    if not re.search(rf"\b{size}\b.*\bkubelet\b", listed) or "9p" in shell.run(
            ["debugfs", "-R", "cat /etc/fstab", str(raw)], timeout=60).stdout:
        raise LabError(f"writing kubelet and /etc/fstab into the box's image failed; debugfs lists:\n{listed}")


def installed(target: str) -> Path:
    """Where vagrant keeps the box `nodelab/TARGET` (its only version, 0) for libvirt."""
    home = Path(os.environ.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")
    return home / "boxes" / name(target).replace("/", "-VAGRANTSLASH-") / "0" / "libvirt"


def add(box: Path, target: str) -> str:
    """`vagrant box add --force` under the name the Vagrantfile asks for, unless vagrant
    has this very box already (the same Vagrantfile, which names the VM image); that name."""
    with tarfile.open(box) as tar:
        inside = tar.extractfile("Vagrantfile").read().decode()
    try:
        if (installed(target) / "Vagrantfile").read_text() == inside:
            return name(target)
    except OSError:
        pass
    shell.run(["vagrant", "box", "add", "--force", "--name", name(target), str(box)], timeout=900)
    _drop_unused_volumes(target)
    _drop_unused_kernels(target)
    return name(target)


def _drop_unused_volumes(target: str) -> None:
    """vagrant-libvirt uploads each added box into libvirt's pool as a volume of its
    own and never deletes one: drop this box's earlier volumes that no machine's
    disk is backed by (a machine made from an earlier box keeps its base)."""
    prefix = name(target).replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image_0_"
    listed = virsh("vol-list", "default", check=False).stdout
    volumes = sorted(path for path in re.findall(r"(\S+\.img)\s*$", listed, re.M) if Path(path).name.startswith(prefix))
    if len(volumes) < 2:
        return
    used = set()
    for path in LIBVIRT_IMAGES.glob("*.img"):
        if path.name.startswith(prefix):
            continue
        info = shell.run(["qemu-img", "info", "-U", "--output=json", str(path)], check=False).stdout
        found = re.search(r'"backing-filename":\s*"([^"]+)"', info)
        if found:
            used.add(found.group(1))
    for volume in volumes[:-1]:   # the newest (the name carries the time it was added) is the box's now
        if volume not in used:
            virsh("vol-delete", volume, check=False)


def _drop_unused_kernels(target: str) -> None:
    """Kernels staged by earlier boxes of this target that no defined machine boots."""
    domains = virsh("list", "--all", "--name", check=False).stdout.split()
    booted = "".join(virsh("dumpxml", d, check=False).stdout for d in domains)
    current = (installed(target) / "Vagrantfile").read_text()
    for staged in LIBVIRT_IMAGES.glob(f"{STAGED_PREFIX}{target}-*"):
        if re.fullmatch(rf"{re.escape(STAGED_PREFIX + target)}-[0-9a-f]{{12}}-.*", staged.name) \
                and str(staged) not in booted and str(staged) not in current:
            staged.unlink()


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """virsh on the libvirt vagrant-libvirt uses, answering in 60 s; `check`: a failure raises."""
    try:
        proc = subprocess.run(["virsh", "-c", LIBVIRT, *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise LabError("virsh: not installed (run `nodelab --backend vagrant setup`)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"virsh {' '.join(args)}: libvirt did not answer in 60 s") from None
    if check and proc.returncode != 0:
        raise LabError(f"virsh {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc
