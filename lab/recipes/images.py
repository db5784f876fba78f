"""Node images: debootstrap + apt, imported into the host docker, cached.

Two layers, each keyed by its inputs: a root filesystem per suite
(debootstrap, archive signatures verified) and a node image per target (its
pinned packages installed and held by provision-node.sh in a container made
from that root filesystem). Each image is also saved under the cache dir, so
an engine that lost its images gets them back without a rebuild.
"""

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import docker.errors

from lab import paths, shell
from lab.recipes import archives
from lab.errors import LabError
from lab.owned.state import LabState, Resource, owner_label
from lab.recipes.targets import UBUNTU_ARCHIVE_KEY, Target

NODE_REPO = "nodelab/node"
ROOTFS_REPO = "nodelab/rootfs"
BUSYBOX_REPO = "nodelab/busybox"
UBUNTU_KEYRING_DEB = "pool/main/u/ubuntu-keyring/ubuntu-keyring_2012.05.19_all.deb"
# PID 1 of the pause/sandbox container: never exits, but stops on TERM/INT.
PAUSE_CMD = ["/bin/sh", "-c", 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done']


def node_tag(target: Target) -> str:
    return f"{NODE_REPO}:{target.name}-{target.recipe_key(paths.asset('provision-node.sh').read_text())}"


def _cache(name: str) -> Path:
    d = paths.cache_dir() / "images"
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def _saved(tag: str) -> Path:
    return _cache(tag.replace("/", "_").replace(":", "_") + ".tar")


def _present(client, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        pass
    saved = _saved(tag)
    if saved.exists():
        shell.run(["docker", "load", "-i", str(saved)], timeout=600)
        return True
    return False


def _save(tag: str) -> None:
    saved = _saved(tag)
    tmp = saved.with_suffix(".part")
    shell.run(["docker", "save", "-o", str(tmp), tag], timeout=600)
    os.replace(tmp, saved)


def ubuntu_keyring() -> Path:
    """The Ubuntu archive key, trusted only by its pinned fingerprint."""
    out = paths.cache_dir() / "keyrings" / f"ubuntu-archive-{UBUNTU_ARCHIVE_KEY[-8:]}.gpg"
    if out.exists() and _fingerprints(out) == [UBUNTU_ARCHIVE_KEY]:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        deb = Path(tmp) / "keyring.deb"
        url = f"{archives.default_mirror('xenial', 'ubuntu')}/{UBUNTU_KEYRING_DEB}"
        try:
            urllib.request.urlretrieve(url, deb)
        except OSError as exc:
            raise LabError(f"cannot fetch the Ubuntu keyring package from the archive: {exc}") from None
        shell.run(["dpkg-deb", "-x", str(deb), tmp])
        full = Path(tmp) / "usr/share/keyrings/ubuntu-archive-keyring.gpg"
        gpg = ["gpg", "--batch", "--homedir", tmp, "--no-default-keyring", "--keyring", str(full)]
        exported = subprocess.run([*gpg, "--export", UBUNTU_ARCHIVE_KEY], capture_output=True, timeout=60)
        if exported.returncode != 0 or not exported.stdout:
            raise LabError(f"the Ubuntu keyring package holds no key {UBUNTU_ARCHIVE_KEY}")
        out.write_bytes(exported.stdout)
    if _fingerprints(out) != [UBUNTU_ARCHIVE_KEY]:
        out.unlink()
        raise LabError(f"the Ubuntu keyring does not hold the pinned key {UBUNTU_ARCHIVE_KEY}")
    return out


def _fingerprints(keyring: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as home:
        out = shell.run(["gpg", "--batch", "--homedir", home, "--no-default-keyring", "--keyring", str(keyring),
                         "--with-colons", "--fingerprint"], timeout=60).stdout
    # Primary-key fingerprints only (a "fpr" line right after a "pub" line).
    lines = out.splitlines()
    return [b.split(":")[9] for a, b in zip(lines, lines[1:]) if a.startswith("pub:") and b.startswith("fpr:")]


def _rootfs_image(client, target: Target, say) -> str:
    tag = f"{ROOTFS_REPO}:{target.suite}-{target.rootfs_key()}"
    if _present(client, tag):
        return tag
    keyring = ubuntu_keyring() if target.distro == "ubuntu" else Path(archives.DEBIAN_KEYRING)
    mirror = archives.default_mirror(target.suite, target.distro)
    work = Path(tempfile.mkdtemp(dir=_cache(""), prefix=f"rootfs-{target.suite}-"))
    try:
        say(f"debootstrap {target.suite} (about 1-2 min)")
        shell.run(["debootstrap", "--variant=minbase", f"--keyring={keyring}",
                   f"--include={','.join(target.base_include)}", target.suite, str(work / "root"), mirror],
                  timeout=1800)
        tar = subprocess.Popen(["tar", "-C", str(work / "root"), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(["docker", "import", "--change", f"LABEL nodelab.rootfs={tag}", "-", tag],
                             stdin=tar.stdout, capture_output=True, text=True)
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise LabError(f"importing the {target.suite} root filesystem failed: {imp.stderr.strip()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _save(tag)
    return tag


def build_node_image(client, state: LabState, target: Target, say=print, force: bool = False) -> str:
    """The target's node image tag, built if it is not cached."""
    if target.unavailable:
        raise LabError(f"target {target.name} is unavailable here: {target.unavailable}")
    tag = node_tag(target)
    if not force and _present(client, tag):
        return tag
    started = time.monotonic()
    base = _rootfs_image(client, target, say)
    mirror = archives.default_mirror(target.suite, target.distro)
    name = f"nodelab-build-{target.name}-{os.getpid()}"
    state.record(Resource("container", name, "image-build"))
    say(f"installing {target.name}'s pinned packages (about 1 min)")
    try:
        container = client.containers.create(
            base, ["sh", "/provision-node.sh"], name=name, labels={"nodelab.owner": owner_label()},
            environment={"NODELAB_SOURCES": target.sources_list(mirror),
                         "NODELAB_PACKAGES": " ".join(target.packages),
                         "NODELAB_HOLD": " ".join(target.hold)})
        container.put_archive("/", tar_of({"provision-node.sh": paths.asset("provision-node.sh").read_bytes()}))
        container.start()
        result = container.wait(timeout=1800)
        logs = container.logs().decode(errors="replace")
        (_cache(f"build-{target.name}.log")).write_text(logs)
        if result["StatusCode"] != 0:
            raise LabError(f"provisioning {target.name} failed (exit {result['StatusCode']}):\n{shell.tail(logs)}")
        versions = logs.strip().splitlines()[-5:]
        container.commit(repository=tag.split(":")[0], tag=tag.split(":")[1], conf={
            "Entrypoint": ["/usr/local/lib/nodelab/node-entrypoint.sh"], "Cmd": [],
            "Env": ["container=docker"], "StopSignal": "SIGRTMIN+3",
            "Labels": {"nodelab.target": target.name, "nodelab.recipe": tag,
                       "nodelab.packages": " ".join(versions)}})
    finally:
        remove_container(client, name)
        state.forget("container", name)
    _save(tag)
    say(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def busybox_image(client, say=print) -> str:
    """Sandbox ("pause") and workload image: Debian's static busybox, nothing else."""
    apt_root = paths.cache_dir() / "busybox"
    apt = archives.debian_apt(apt_root / "apt", binaries=("bookworm",))
    existing = sorted(apt_root.glob("debs/busybox-static_*.deb"))
    if not existing:
        say("fetching busybox-static (Debian) for the sandbox image")
        apt.update()
        existing = apt.download(["busybox-static"], apt_root / "debs")
    deb = existing[-1]
    tag = f"{BUSYBOX_REPO}:{deb.name.split('_')[1].replace('%3a', '-').replace('+', '-').replace('~', '-')}"
    if _present(client, tag):
        return tag
    with tempfile.TemporaryDirectory() as tmp:
        shell.run(["dpkg-deb", "-x", str(deb), tmp])
        busybox = (Path(tmp) / "bin/busybox").read_bytes()
        applets = shell.run([str(Path(tmp) / "bin/busybox"), "--list"]).stdout.split()
    files = {"bin/busybox": busybox}
    links = {f"bin/{a}": "busybox" for a in applets if a != "busybox"}
    imp = subprocess.run(["docker", "import", "--change", f"CMD {json.dumps(PAUSE_CMD)}", "-", tag],
                         input=tar_of(files, links).read(), capture_output=True)
    if imp.returncode != 0:
        raise LabError(f"importing {tag} failed: {imp.stderr.decode(errors='replace')}")
    return tag


def tar_of(files: dict[str, bytes], links: dict[str, str] | None = None, mode: int = 0o755) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        # Parent directories get entries of their own: older engines (docker
        # 18.09 in the nodes) do not create them when loading a layer.
        now = int(time.time())
        for d in ["."] + sorted({str(Path(n).parent) for n in [*files, *(links or {})]} - {"."}):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, now
            tar.addfile(info, io.BytesIO(content))
        for name, dest in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, dest, 0o777, now
            tar.addfile(info)
    buf.seek(0)
    return buf


def remove_container(client, name: str) -> None:
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def listing(client) -> list[dict]:
    """Every target with what is built for it."""
    from lab.recipes.targets import TARGETS
    rows = []
    for target in TARGETS.values():
        if target.unavailable:
            rows.append({"target": target.name, "image": "", "status": "unavailable: " + target.unavailable,
                         "summary": target.summary})
            continue
        tag = node_tag(target)
        try:
            image = client.images.get(tag)
            status = "built " + image.attrs.get("Created", "")[:19] + "  " + image.labels.get("nodelab.packages", "")
        except docker.errors.ImageNotFound:
            status = f"saved in {_saved(tag)}, loaded on first use" if _saved(tag).exists() else "not built"
        rows.append({"target": target.name, "image": tag, "status": status, "summary": target.summary})
    return rows
