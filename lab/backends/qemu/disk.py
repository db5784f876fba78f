"""VM disk images: the container node's recipe, plus the target's own kernel.

A target's VM image is made from its node image (lab.recipes.images: the
same debootstrap root, pins and provisioning), in a container that runs
provision-vm.sh (kernel packages, SSH, the boot unit); its filesystem is
exported and written into an ext4 image with `mkfs.ext4 -d`, so no loop
device or mount is needed. Kernel and initrd are kept beside the disk and
handed to qemu directly. Everything is cached, keyed by the node image, the
VM scripts and the kernel packages; nodes boot copy-on-write overlays of it.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab import paths, shell
from lab.errors import LabError
from lab.owned.state import LabState, Resource, owner_label
from lab.recipes import images
from lab.recipes.targets import Target

DISK_SIZE = "12G"    # sparse: what the root holds (~1 GB) plus room for images and pods
VM_SCRIPTS = ("provision-vm.sh", "nodelab-vm-init")


@dataclass(frozen=True)
class VMImage:
    directory: Path
    target: str

    @property
    def disk(self) -> Path:
        return self.directory / "disk.raw"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path | None:
        path = self.directory / "initrd.img"
        return path if path.exists() else None

    @property
    def manifest(self) -> dict:
        try:
            return json.loads((self.directory / "manifest.json").read_text())
        except OSError:
            return {}


def _key(node_tag: str, target: Target) -> str:
    inputs = {"node": node_tag, "kernel": target.kernel, "initrd": target.kernel_initrd, "size": DISK_SIZE,
              "scripts": {n: paths.asset(n).read_text() for n in VM_SCRIPTS},
              "recipe": Path(__file__).read_text()}   # what this module writes into the image is an input too
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]


def directory(node_tag: str, target: Target) -> Path:
    return paths.cache_dir() / "vm" / f"{target.name}-{_key(node_tag, target)}"


def cached(node_tag: str, target: Target) -> VMImage | None:
    found = VMImage(directory(node_tag, target), target.name)
    return found if (found.directory / "manifest.json").exists() else None


def build(client, state: LabState, target: Target, node_tag: str, say=print) -> VMImage:
    """The target's VM image, built from its node image if not cached."""
    if not target.kernel:
        raise LabError(f"target {target.name} names no kernel package to boot")
    found = cached(node_tag, target)
    if found:
        return found
    started = time.monotonic()
    out = directory(node_tag, target)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".build-{target.name}-"))
    name = f"nodelab-vmbuild-{target.name}-{os.getpid()}"
    state.record(Resource("container", name, "image-build"))
    try:
        say(f"installing {target.name}'s kernel ({', '.join(target.kernel)}) and SSH for its VM image (about 1-2 min)")
        container = client.containers.create(node_tag, name=name, entrypoint=["/bin/sh", "/provision-vm.sh"],
                                             labels={"nodelab.owner": owner_label()},
                                             environment={"NODELAB_KERNEL": " ".join(target.kernel)})
        container.put_archive("/", images.tar_of({n: paths.asset(n).read_bytes() for n in VM_SCRIPTS}))
        container.start()
        result = container.wait(timeout=1800)
        logs = container.logs().decode(errors="replace")
        (out.parent / f"build-{target.name}.log").write_text(logs)
        if result["StatusCode"] != 0:
            raise LabError(f"provisioning {target.name}'s VM image failed (exit {result['StatusCode']}):\n"
                           f"{shell.tail(logs)}")
        say(f"writing {target.name}'s root filesystem into an ext4 disk image")
        root = work / "root"
        root.mkdir()
        export = subprocess.Popen(["docker", "export", name], stdout=subprocess.PIPE)
        untar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-xpf", "-"], stdin=export.stdout,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        export.stdout.close()   # tar's alone: if tar dies, export gets SIGPIPE instead of blocking forever
        _, untar_err = untar.communicate(timeout=1800)
        export.wait(timeout=60)
        if export.returncode != 0 or untar.returncode != 0:
            raise LabError(f"exporting {name} failed: {untar_err.strip()}")
        # Docker's own mount points in an exported container are empty files.
        for placeholder in ("etc/hostname", "etc/resolv.conf", ".dockerenv"):
            (root / placeholder).unlink(missing_ok=True)
        (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
        # kubelet reads it for every pod sandbox; nothing leaves the machine, so it names no server.
        (root / "etc/resolv.conf").write_text("# nodelab VM: no DNS server (nothing leaves the machine)\n")
        kernel = _one(root, "boot/vmlinuz-*")
        shutil.copy2(kernel, work / "vmlinuz")
        if target.kernel_initrd:
            shutil.copy2(_one(root, f"boot/initrd.img-{kernel.name.removeprefix('vmlinuz-')}"), work / "initrd.img")
        shell.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(work / "disk.raw"), DISK_SIZE],
                  timeout=900)
        shutil.rmtree(root)
        (work / "manifest.json").write_text(json.dumps({
            "target": target.name, "node_image": node_tag, "kernel_release": kernel.name.removeprefix("vmlinuz-"),
            "kernel_packages": list(target.kernel), "initrd": target.kernel_initrd, "disk_size": DISK_SIZE,
            "built_seconds": round(time.monotonic() - started, 1)}, indent=2))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(work, out)
        for older in out.parent.iterdir():   # this target's images of earlier recipes (not xenial-ga's for xenial)
            if older != out and older.is_dir() and re.fullmatch(rf"{re.escape(target.name)}-[0-9a-f]{{12}}", older.name):
                shutil.rmtree(older, ignore_errors=True)
    finally:
        images.remove_container(client, name)
        state.forget("container", name)
        shutil.rmtree(work, ignore_errors=True)
    say(f"built the {target.name} VM image in {time.monotonic() - started:.0f} s ({out})")
    return VMImage(out, target.name)


def _one(root: Path, pattern: str) -> Path:
    found = sorted(root.glob(pattern))
    if len(found) != 1:
        raise LabError(f"expected one {pattern} in the VM image, found {[p.name for p in found]}")
    return found[0]
