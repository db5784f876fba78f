"""Targets: named, declarative recipes for node images.

A target says which distribution a node runs and exactly which versions of
the packages that matter (systemd, docker, containerd, runc, gdb), and which
of them apt must hold. Nothing here is a verdict: scenarios derive their
expected verdicts from the versions read from a running node.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from lab.errors import LabError

UBUNTU_ARCHIVE_KEY = "790BC7277767219C42C86F933B4FE6ACC0B21F32"  # Ubuntu Archive Automatic Signing Key (2012)
BASE_INCLUDE = ("systemd", "systemd-sysv", "dbus", "iproute2", "procps", "ca-certificates")
NODE_TOOLS = ("iptables", "curl", "kmod", "dbus")


@dataclass(frozen=True)
class Target:
    name: str
    summary: str
    distro: str                     # ubuntu | debian | centos
    suite: str
    pockets: tuple[str, ...]        # suites named in the node's sources.list
    components: tuple[str, ...]
    packages: tuple[str, ...]       # apt arguments: "name", "name=version", "name=version*"
    hold: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    unavailable: str = ""           # why the docker backend cannot build it here
    base_include: tuple[str, ...] = field(default=BASE_INCLUDE)
    # What a VM node (lab.backends.qemu) boots: the distribution's own kernel
    # packages, whether that kernel needs its initrd (its virtio and ext4
    # drivers are modules), and what its command line must add.
    kernel: tuple[str, ...] = ()
    kernel_initrd: bool = False
    kernel_cmdline: tuple[str, ...] = ()

    def rootfs_key(self) -> str:
        return _digest({"distro": self.distro, "suite": self.suite, "include": self.base_include})

    def recipe_key(self, provision_script: str) -> str:
        """The container node's recipe: everything but the kernel, which a container does not boot."""
        recipe = {k: v for k, v in asdict(self).items() if not k.startswith("kernel")}
        return _digest({"recipe": recipe, "provision": provision_script})

    def sources_list(self, mirror: str) -> str:
        return "\n".join(f"deb {mirror} {p} {' '.join(self.components)}" for p in self.pockets)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def _xenial(systemd: str) -> tuple[str, ...]:
    pinned = {name: systemd for name in ("systemd", "libsystemd0", "systemd-sysv", "libpam-systemd",
                                         "udev", "libudev1", "systemd-dbg")}
    pinned.update({
        "docker.io": "18.09.7-0ubuntu1~16.04.7",
        "containerd": "1.2.6-0ubuntu1~16.04.6+esm1",
        "runc": "1.0.0~rc7+git20190403.029124da-0ubuntu1~16.04.4",   # still probes a systemd test slice per call
        "gdb": "7.11-0ubuntu1",
    })
    return tuple(f"{n}={v}" for n, v in pinned.items()) + NODE_TOOLS


# Ubuntu 16.04's GA kernel, from the release pocket: virtio and ext4 are built
# in (no initrd); -extra- carries virtio_rng and 9p, which the VM loads.
XENIAL_KERNEL = ("linux-image-4.4.0-21-generic", "linux-image-extra-4.4.0-21-generic")
XENIAL_HOLD = ("systemd", "libsystemd0", "systemd-sysv", "libpam-systemd", "udev", "libudev1", "systemd-dbg")

TARGETS = {t.name: t for t in (
    Target(
        name="xenial-ga",
        summary="Ubuntu 16.04 as released: systemd 229-4ubuntu4 (no cookie-overflow fix), docker 18.09.7, runc rc7",
        distro="ubuntu", suite="xenial", pockets=("xenial", "xenial-updates"), components=("main", "universe"),
        packages=_xenial("229-4ubuntu4"), hold=XENIAL_HOLD, kernel=XENIAL_KERNEL,
        notes=("systemd debug symbols: systemd-dbg 229-4ubuntu4",),
    ),
    Target(
        name="xenial",
        summary="Ubuntu 16.04 updated: systemd 229-4ubuntu21.31 (cookie fix backported in 21.29), docker 18.09.7",
        distro="ubuntu", suite="xenial", pockets=("xenial", "xenial-updates"), components=("main", "universe"),
        packages=_xenial("229-4ubuntu21.31"), hold=XENIAL_HOLD, kernel=XENIAL_KERNEL,
        notes=("systemd debug symbols: systemd-dbg 229-4ubuntu21.31",),
    ),
    Target(
        name="bookworm",
        summary="Debian 12: systemd 252 (fixed upstream in v242), docker.io 20.10, containerd 1.6, runc 1.1",
        distro="debian", suite="bookworm", pockets=("bookworm", "bookworm-updates"), components=("main",),
        packages=("systemd=252.*", "systemd-sysv=252.*", "libsystemd0=252.*", "docker.io=20.10.*",
                  "containerd=1.6.*", "runc=1.1.*", "gdb") + NODE_TOOLS,
        # Debian 12's kernel boots cgroup v2 unless told; the lab's nodes are v1, like the seed's.
        kernel=("linux-image-amd64",), kernel_initrd=True, kernel_cmdline=("systemd.unified_cgroup_hierarchy=0",),
        notes=("systemd debug symbols: none (Debian's debug-symbol archive does not answer here); "
               "gdb breaks on the exported sd_bus_send and uses a verified struct offset",),
    ),
    Target(
        name="centos7",
        summary="CentOS 7: systemd 219, docker 1.13 / docker-ce 18.09",
        distro="centos", suite="7", pockets=(), components=(), packages=(),
        unavailable="no CentOS 7 package source answers from this host (only Debian and Ubuntu archives "
                    "are reachable), and the docker backend builds node images from reachable archives only",
    ),
)}

PRIMARY = ("xenial-ga", "bookworm")  # one affected, one fixed: what CI runs


def candidate(base: str, overrides: dict[str, str]) -> Target:
    """The base target with some packages at candidate versions (the regression gate).

    Overriding a package moves every package pinned at the same version with
    it (systemd=V also moves libsystemd0, udev, systemd-dbg... built from the
    same source), so a candidate is never a mix of two builds.
    """
    target = runnable(base)
    pins = dict(p.split("=", 1) if "=" in p else (p, "") for p in target.packages)
    for name, version in overrides.items():
        if name not in pins:
            raise LabError(f"target {base} has no package {name!r} to replace; it pins: "
                           + ", ".join(n for n, v in pins.items() if v))
        old = pins[name]
        for other, pinned in list(pins.items()):
            if other == name or (old and pinned == old):
                pins[other] = version
    packages = tuple(f"{n}={v}" if v else n for n, v in pins.items())
    label = ",".join(f"{n}={v}" for n, v in sorted(overrides.items()))
    # The name goes into image tags, container and node names: [a-z0-9-] only.
    name = f"{base}-candidate-{_digest(label)[:8]}"
    return replace(target, name=name, summary=f"{base} with {label}", packages=packages)


def get(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise LabError(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None


def runnable(name: str) -> Target:
    target = get(name)
    if target.unavailable:
        raise LabError(f"target {name} is unavailable here: {target.unavailable}")
    return target
