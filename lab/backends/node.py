"""The node interface every backend implements.

A backend's node supplies four primitives (exec with a timeout, file
put/get, a testinfra host) and a command line for interactive tools;
everything else here is built on `run`, so an SSH-reached node (a qemu or
Vagrant VM, a staging machine through paramiko) gets it for free. What only
some backends can do (see the host's view of a node's processes) is theirs,
declared in their Capabilities (lab.backends.base).
"""

import shlex
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from lab.errors import LabError


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


class CommandFailed(Exception):
    def __init__(self, node: str, cmd: str, result: Result):
        what = "timed out" if result.timed_out else f"exit {result.rc}"
        super().__init__(f"on {node}: `{cmd}` {what}: {(result.stderr or result.stdout).strip()[-500:]}")
        self.result = result


class Node(ABC):
    name: str
    backend: str
    target: str = ""
    details: dict = {}    # what the backend says about this node in reports (accelerator, sizes, ...)

    @property
    def adapters(self) -> list[str]:
        """Sandbox adapters active on this node (lab.backends.docker.adapters); none by default."""
        return []

    @abstractmethod
    def _exec(self, argv: list[str], timeout: float, stdin: bytes | None) -> Result:
        """Run argv in the node; kill it and set timed_out after timeout seconds."""

    @abstractmethod
    def interactive_argv(self, argv: list[str]) -> list[str]:
        """A host command line running argv in the node with stdin/stdout attached
        (for long-lived tools driven over pipes, such as gdb under pygdbmi)."""

    def login_argv(self) -> list[str]:
        """A host command line that opens a person's shell on the node (a terminal)."""
        return self.interactive_argv(["bash"])

    @abstractmethod
    def put_file(self, path: str, content: bytes | str, mode: int = 0o644) -> None: ...

    @abstractmethod
    def get_file(self, path: str) -> bytes: ...

    @abstractmethod
    def testinfra_host(self):
        """A testinfra Host for assertions on this node."""

    def run(self, cmd: str | list[str], timeout: float = 60, check: bool = True,
            stdin: bytes | None = None) -> Result:
        return self._run(lambda argv, t: self._exec(argv, t, stdin), cmd, timeout, check)

    def _run(self, execute, cmd: str | list[str], timeout: float, check: bool) -> Result:
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        # The node enforces the timeout itself, so nothing is left running there.
        result = execute(["timeout", "-k", "5", str(int(timeout)), *argv], timeout + 15)
        if result.rc in (124, 137) and not result.timed_out:
            result.timed_out = True
        if check and not result.ok:
            raise CommandFailed(self.name, cmd if isinstance(cmd, str) else shlex.join(cmd), result)
        return result

    def wait_for_systemd(self, deadline: float, alive=lambda: None, what: str = "node",
                         waited: str = "") -> None:
        """Return once the node's systemd has finished booting (`running`); a
        `degraded` boot is an error that lists the failed units. `alive()` is
        the backend's own check that the node still exists (it raises if not);
        a node not reachable yet (a LabError from run) is asked again."""
        state = ""
        while time.monotonic() < deadline:
            alive()
            try:
                state = self.run(["systemctl", "is-system-running"], check=False, timeout=20).stdout.strip()
            except LabError:
                state = "not reachable yet"
            if state == "running":
                return
            if state == "degraded":
                failed = self.run(["systemctl", "--failed", "--no-legend"], check=False).stdout.strip()
                raise LabError(f"{what} {self.name} booted degraded; failed units:\n{failed}")
            time.sleep(1)
        raise LabError(f"{what} {self.name}: systemd not running{' ' + waited if waited else ''} (state {state!r})")

    def clock_offset(self) -> tuple[float, float]:
        """The node's clock minus the lab's, in seconds (a VM keeps its own),
        and the round trip it was read in (the offset is known to half of it)."""
        t0 = time.time()
        node_now = float(self.run(["date", "+%s.%N"]).stdout.strip())
        t1 = time.time()
        return node_now - (t0 + t1) / 2, t1 - t0

    def journal(self, unit: str | None = None, since: str | None = None, grep: str | None = None,
                lines: int = 200) -> str:
        args = ["journalctl", "--no-pager", "-o", "short-precise", "-n", str(lines)]
        if unit:
            args += ["-u", unit]
        if since:
            args += ["--since", since]
        out = self.run(args, timeout=60, check=False).stdout
        if grep:
            out = "\n".join(line for line in out.splitlines() if grep in line)
        return out

    def package_versions(self, names: list[str]) -> dict[str, str | None]:
        """Installed versions read from the node's package database (never assumed)."""
        fmt = "${Package}=${Version} ${db:Status-Abbrev}\\n"
        out = self.run(["dpkg-query", "-W", f"-f={fmt}", *names], check=False).stdout
        found: dict[str, str | None] = {n: None for n in names}
        for line in out.splitlines():
            pkg_ver, _, status = line.partition(" ")
            name, _, version = pkg_ver.partition("=")
            if status.startswith("ii") or status.startswith("hi"):
                found[name] = version
        return found
