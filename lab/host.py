"""The lab host: packages it needs, its docker engine, what it can run."""

import os
import shutil
import time
from dataclasses import dataclass

import docker
import docker.errors

from lab import paths, shell
from lab.backends.docker import adapters as capabilities
from lab.owned import daemons
from lab.errors import LabError, PrerequisiteMissing
from lab.owned.state import LabState

# command -> Debian package that provides it on the lab host.
HOST_COMMANDS = {
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "etcd": "etcd-server",
    "gpg": "gpg",
    "gpgv": "gpgv",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
    "gcc": "gcc",             # builds the static stand-ins (lab/standins.py)
    "nsenter": "util-linux",  # reaches a node that has no PIDs left
}


def missing_commands() -> dict[str, str]:
    return {cmd: pkg for cmd, pkg in HOST_COMMANDS.items() if shutil.which(cmd) is None}


def install_packages(say=print) -> list[str]:
    """Install what is missing with apt; returns the packages installed."""
    missing = sorted(set(missing_commands().values()))
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


def docker_client(timeout: int = 120) -> docker.DockerClient:
    """A client to an engine that answers, or one clear error."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise LabError(f"the docker engine does not answer ({_short(exc)}); run `nodelab setup`") from None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


def ensure_docker_engine(state: LabState, say=print) -> docker.DockerClient:
    """Use the engine that answers; if none does, start dockerd and own it."""
    try:
        return docker_client()
    except LabError:
        pass
    if daemons.live(state, "dockerd"):
        raise LabError("the dockerd the lab started is running but does not answer; "
                       f"see {paths.state_dir() / 'dockerd.log'} or run `nodelab down`")
    if shutil.which("dockerd") is None:
        raise PrerequisiteMissing("no docker engine answers and dockerd is not installed; run `nodelab setup`")
    say("starting dockerd (no engine answered)")
    log = paths.state_dir() / "dockerd.log"
    daemons.start(state, "dockerd", ["dockerd"], log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return docker_client(timeout=10)
        except LabError:
            time.sleep(1)
    raise LabError(f"dockerd did not answer within 60 s; see {log}")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def doctor() -> list[Check]:
    """What this host can and cannot run, and why."""
    checks = []
    missing = missing_commands()
    checks.append(Check("host packages", not missing,
                        "all present" if not missing else
                        "missing: " + ", ".join(f"{c} ({p})" for c, p in missing.items())))
    checks.append(Check("root", os.geteuid() == 0, "nodes, mounts and gdb need root"))
    adapters = capabilities.sandbox_adapters()
    checks.append(Check("CAP_SYS_RESOURCE",
                        not adapters,
                        "present: nodes run --privileged, no adapters" if not adapters else
                        "missing from the bounding set: nodes run with every other capability and "
                        f"these sandbox adapters: {', '.join(adapters)}"))
    try:
        client = docker_client(timeout=10)
        info = client.info()
        checks.append(Check("docker engine", True,
                            f"{info.get('ServerVersion')} storage={info.get('Driver')} "
                            f"cgroup v{info.get('CgroupVersion')} driver={info.get('CgroupDriver')}"))
    except LabError as exc:
        checks.append(Check("docker engine", False, str(exc)))
    kvm = os.path.exists("/dev/kvm")
    checks.append(Check("VM backend (vagrant/qemu)", False,
                        "not available: " + ("/dev/kvm exists but nested guests are not supported by "
                                             "the docker backend yet" if kvm else "no /dev/kvm")))
    checks.append(Check("kernel", True, os.uname().release))
    return checks
