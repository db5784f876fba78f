"""The lab's image registry: Debian's docker-registry (distribution 2.8) run
by the lab on its network, reachable two ways: directly ("near", fast) and
through a bandwidth-limited relay ("far", slow; lab/throttle.py).

The binary comes from Debian's package, fetched with the lab's own apt
configuration and unpacked into the cache; the package is never installed on
the host, because its maintainer scripts would start a registry service on
the host's port 5000. The process is recorded in the lab state (`nodelab down`
stops it). It serves TLS with a self-signed certificate that nodes trust
through docker's /etc/docker/certs.d, so no node's docker is restarted.
"""

import json
import os
import shutil
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lab import archives, daemons, paths, pki, shell, timefmt
from lab.errors import LabError
from lab.state import LabState
from lab.throttle import ThrottledRelay

PACKAGE, SUITE = "docker-registry", "bookworm"
ROLE = "docker-registry"
CONFIG = """version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {address}:{port}
  tls:
    certificate: {crt}
    key: {key}
"""


def binary(say=print) -> Path:
    """docker-registry from Debian's package, unpacked into the cache once."""
    root = paths.cache_dir() / "registry" / SUITE
    exe = root / "usr/bin/docker-registry"
    if exe.exists():
        return exe
    say(f"fetching {PACKAGE} from Debian {SUITE} (unpacked into {root}, not installed)")
    work = root.with_name(f"{SUITE}.partial")
    shutil.rmtree(work, ignore_errors=True)
    apt = archives.debian_apt(work / "apt", binaries=(SUITE,))
    apt.update()
    debs = apt.download([PACKAGE], work / "debs")
    if not debs:
        raise LabError(f"apt downloaded no {PACKAGE} package from {SUITE}")
    shell.run(["dpkg-deb", "-x", str(debs[0]), str(work / "unpacked")], timeout=120)
    (work / "unpacked" / "PACKAGE").write_text(debs[0].name + "\n")
    shutil.rmtree(root, ignore_errors=True)
    (work / "unpacked").rename(root)
    shutil.rmtree(work, ignore_errors=True)
    return exe


@dataclass
class Request:
    """One request the registry completed (host clock, epoch seconds)."""
    ended: float
    seconds: float
    method: str
    uri: str
    status: int
    written: int

    @property
    def started(self) -> float:
        return self.ended - self.seconds

    @property
    def repository(self) -> str:
        """'/v2/nodelab/large/blobs/sha256:..' -> 'nodelab/large'."""
        parts = self.uri.split("?")[0].split("/")[2:]
        for i, part in enumerate(parts):
            if part in ("manifests", "blobs", "tags"):
                return "/".join(parts[:i])
        return "/".join(parts)


@dataclass
class Registry:
    state: LabState
    address: str                  # the lab network's gateway: nodes and host reach it
    slow_bytes_per_second: int
    directory: Path = field(default_factory=lambda: paths.state_dir() / "registry")

    def start(self, say=print) -> "Registry":
        exe = binary(say)
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.crt, key = pki.write_self_signed(self.directory, "registry", [self.address])
        self.port = daemons.free_port(self.address)
        config = self.directory / "config.yml"
        config.write_text(CONFIG.format(storage=self.directory / "storage", address=self.address, port=self.port,
                                        crt=self.crt, key=key))
        self.log = self.directory / "registry.log"
        daemons.start(self.state, ROLE, [str(exe), "serve", str(config)], self.log, env={**os.environ, "TZ": "UTC"})
        self._wait_answering()
        self.relay = ThrottledRelay((self.address, 0), (self.address, self.port), self.slow_bytes_per_second).start()
        self.version = shell.run([str(exe), "--version"], timeout=30).stdout.split(None, 1)[-1].strip()
        say(f"registry {self.version} at {self.near}; slow path at {self.far} "
            f"({self.slow_bytes_per_second / 2**20:.2f} MiB/s)")
        return self

    @property
    def near(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def far(self) -> str:
        return self.relay.address

    def _wait_answering(self, seconds: float = 30) -> None:
        ctx = ssl.create_default_context(cafile=str(self.crt))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"https://{self.near}/v2/", context=ctx, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        res = daemons.live(self.state, ROLE)
        raise LabError(f"docker-registry did not answer on {self.near} within {seconds:.0f} s:\n"
                       f"{daemons.log_tail(res) if res else self.log.read_text(errors='replace')[-2000:]}")

    def trust(self, node) -> None:
        """Let the node's docker verify the registry on both paths (certs.d is read per pull)."""
        for where in (self.near, self.far):
            node.put_file(f"/etc/docker/certs.d/{where}/ca.crt", self.crt.read_bytes())

    def requests(self) -> list[Request]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") != "response completed":
                continue
            out.append(Request(timefmt.rfc3339(entry["time"]), timefmt.go_duration(entry.get("http.response.duration", "0s")),
                               entry.get("http.request.method", ""), entry.get("http.request.uri", ""),
                               int(entry.get("http.response.status", 0)), int(entry.get("http.response.written", 0))))
        return out

    def stop(self) -> None:
        relay = getattr(self, "relay", None)
        if relay:
            relay.stop()
        for res in self.state.resources("process", ROLE):
            daemons.stop(res)
            self.state.forget("process", res.ref)

