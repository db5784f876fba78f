"""The lab host: the packages it needs, and what it can run (backends add their own checks)."""

import glob
import os
import shutil
from dataclasses import dataclass

from lab import shell
from lab.errors import PrerequisiteMissing

# command -> Debian package that provides it on the lab host.
HOST_COMMANDS = {
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "etcd": "etcd-server",
    "gpg": "gpg",
    "gpgv": "gpgv",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
    "gcc": "gcc",             # builds the static C tools and stand-ins (lab/recipes/cbuild.py)
    "nsenter": "util-linux",  # reaches a node that has no PIDs left
    "kubectl": "kubernetes-client",   # Debian's kubectl 1.20, the lab's version: workshops' guides use it
}


def missing_commands(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What is missing, as command -> package; a command given as a path pattern (a
    package that brings no command, e.g. a vagrant plugin) is present when a file matches it."""
    def present(cmd: str) -> bool:
        return bool(glob.glob(cmd)) if cmd.startswith("/") else shutil.which(cmd) is not None
    return {cmd: pkg for cmd, pkg in {**HOST_COMMANDS, **(extra or {})}.items() if not present(cmd)}


def install_packages(say=print, extra: dict[str, str] | None = None) -> list[str]:
    """Install what is missing with apt (`extra`: a backend's commands); returns the packages installed."""
    missing = sorted(set(missing_commands(extra).values()))
    if not missing:
        return []
    if os.geteuid() != 0:
        raise PrerequisiteMissing(f"missing host packages {', '.join(missing)}; run `nodelab setup` as root")
    if shutil.which("apt-get") is None:
        raise PrerequisiteMissing(f"missing host packages {', '.join(missing)} and no apt-get to install them")
    say(f"installing host packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    shell.run(["apt-get", "-q", "update"], timeout=600, env=env)
    shell.run(["apt-get", "-q", "install", "-y", "--no-install-recommends", *missing], timeout=1200, env=env)
    return missing


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def doctor(extra: dict[str, str] | None = None) -> list[Check]:
    """What this host can and cannot run, and why (`extra`: a backend's commands)."""
    checks = []
    missing = missing_commands(extra)
    checks.append(Check("host packages", not missing,
                        "all present" if not missing else
                        "missing: " + ", ".join(f"{c} ({p})" for c, p in missing.items())))
    checks.append(Check("root", os.geteuid() == 0, "nodes, mounts and gdb need root"))
    checks.append(Check("kernel", True, os.uname().release))
    return checks
