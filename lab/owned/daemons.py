"""Background processes the lab starts on the host (dockerd, etcd, API server).

They outlive the command that started them (`nodelab up` returns, `down`
stops them later), so each is recorded in the lab state with its start time:
a PID reused by somebody else's process is never signalled.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from lab.errors import LabError
from lab.owned.state import LabState, Resource, process_start_time


def start(state: LabState, role: str, argv: list[str], log: Path, env: dict | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env)
        except FileNotFoundError:
            raise LabError(f"{argv[0]}: not installed (run `nodelab setup`)") from None
    state.record(Resource("process", f"pid:{proc.pid}", role,
                          {"start_time": process_start_time(proc.pid), "argv": argv, "log": str(log)}))
    return proc.pid


def running(resource: Resource) -> bool:
    pid = int(resource.ref.split(":")[1])
    started = process_start_time(pid)
    return started is not None and started == resource.detail.get("start_time") and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def stop(resource: Resource, grace: float = 15) -> None:
    pid = int(resource.ref.split(":")[1])
    if not running(resource):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not running(resource):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def stop_role(state: LabState, role: str) -> None:
    """Stop every process recorded under `role` and forget it."""
    for res in state.resources("process", role):
        stop(res)
        state.forget("process", res.ref)


def live(state: LabState, role: str) -> Resource | None:
    for res in state.resources("process", role):
        if running(res):
            return res
    return None


def log_tail(resource: Resource, lines: int = 15) -> str:
    try:
        return "\n".join(Path(resource.detail["log"]).read_text(errors="replace").splitlines()[-lines:])
    except (OSError, KeyError):
        return ""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now, for a daemon to bind."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
