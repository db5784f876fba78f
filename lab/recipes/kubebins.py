"""Kubernetes binaries: built from Debian's sources, or the user's own.

No release download answers here, so kubelet, kube-apiserver and
kube-controller-manager are built from Debian's `kubernetes` source package,
whose .orig.tar.gz is the upstream release tree with vendor/ (Debian's own
patches, which touch kubectl printing only, are not applied), with Go 1.15
from Debian bullseye (newer Go builds of 1.20 crash at run time). The result
is cached under the cache dir keyed by every input; a user can point
NODELAB_KUBE_BINARIES (or --kube-binaries) at a directory of their own.
"""

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab import paths, shell
from lab.recipes import archives
from lab.errors import LabError, PrerequisiteMissing

COMPONENTS = ("kubelet", "kube-apiserver", "kube-controller-manager")
KUBE_SOURCE_PACKAGE = "kubernetes"
KUBE_ORIG_TARBALL = "kubernetes_1.20.5+really1.20.2.orig.tar.gz"
KUBE_VERSION = "v1.20.2"
GO_PACKAGES = ("golang-1.15-go=1.15.15-1~deb11u4", "golang-1.15-src=1.15.15-1~deb11u4")
BUILD_SCRIPT = "build-kubernetes.sh"


@dataclass(frozen=True)
class KubeBinaries:
    directory: Path
    version: str
    origin: str  # "built from Debian sources" or "user-supplied"

    def path(self, component: str) -> Path:
        return self.directory / component


def cache_key() -> str:
    h = hashlib.sha256()
    for part in (KUBE_ORIG_TARBALL, KUBE_VERSION, *GO_PACKAGES, paths.asset(BUILD_SCRIPT).read_text()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def version_of(binary: Path) -> str:
    out = shell.run([str(binary), "--version"], timeout=30).stdout
    m = re.search(r"v\d+\.\d+\.\d+\S*", out)
    if not m:
        raise LabError(f"{binary} --version printed no version: {out.strip()[:100]}")
    return m.group(0)


def user_binaries(directory: Path) -> KubeBinaries:
    missing = [c for c in COMPONENTS if not os.access(directory / c, os.X_OK)]
    if missing:
        raise PrerequisiteMissing(f"{directory} lacks executable {', '.join(missing)}")
    return KubeBinaries(directory, version_of(directory / "kubelet"), "user-supplied")


def cached() -> KubeBinaries | None:
    directory = paths.cache_dir() / "kubernetes" / cache_key()
    if all((directory / c).exists() for c in COMPONENTS):
        return KubeBinaries(directory, KUBE_VERSION, "built from Debian sources")
    return None


def resolve(user_dir: str | None = None, say=print) -> KubeBinaries:
    user_dir = user_dir or os.environ.get("NODELAB_KUBE_BINARIES")
    if user_dir:
        return user_binaries(Path(user_dir))
    return cached() or build(say)


def build(say=print) -> KubeBinaries:
    root = paths.cache_dir() / "kubernetes"
    final = root / cache_key()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="build-") as tmp:
        work = Path(tmp)
        say(f"fetching {KUBE_SOURCE_PACKAGE} sources and Go 1.15 (Debian)")
        apt = archives.debian_apt(root / "apt", binaries=("bullseye",), sources=("bookworm",))
        apt.update()
        files = apt.source(KUBE_SOURCE_PACKAGE, work / "src")
        orig = next((f for f in files if f.name == KUBE_ORIG_TARBALL), None)
        if orig is None:
            raise LabError(f"Debian's {KUBE_SOURCE_PACKAGE} sources no longer carry {KUBE_ORIG_TARBALL} "
                           f"(got {', '.join(f.name for f in files)}); supply binaries with NODELAB_KUBE_BINARIES")
        debs = apt.download(list(GO_PACKAGES), work / "go")
        for deb in debs:
            shell.run(["dpkg-deb", "-x", str(deb), str(work / "go")])
        with tarfile.open(orig) as tar:
            tar.extractall(work / "tree", filter="tar")
        tree = next((work / "tree").iterdir())
        say(f"building {', '.join(COMPONENTS)} {KUBE_VERSION} (several minutes on 2 cores)")
        out = work / "out"
        env = dict(os.environ, SRC=str(tree), GOROOT=str(work / "go/usr/lib/go-1.15"), OUT=str(out),
                   KUBE_VERSION=KUBE_VERSION, WORK=str(work))
        # Streamed, so that each step shows as progress during a long build.
        proc = subprocess.Popen(["bash", str(paths.asset(BUILD_SCRIPT))], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = []
        for line in proc.stdout:
            output.append(line)
            if line.startswith(("generating ", "building ")):
                say(f"  {line.strip()}")
        log = "".join(output)
        (root / "last-build.log").write_text(log)
        if proc.wait() != 0:
            raise LabError(f"building Kubernetes failed; see {root / 'last-build.log'}:\n{shell.tail(log)}")
        if version_of(out / "kubelet") != KUBE_VERSION:
            raise LabError(f"built kubelet reports {version_of(out / 'kubelet')}, expected {KUBE_VERSION}")
        shutil.rmtree(final, ignore_errors=True)
        out.rename(final)
    return KubeBinaries(final, KUBE_VERSION, "built from Debian sources")
