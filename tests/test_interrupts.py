"""A controller killed or interrupted mid-run: PID 1 stays alive and running,
the report says `interrupted`, and `nodelab down` leaves nothing behind.

Each test runs `nodelab run cookie` as a child process in a lab of its own (a
separate state dir: its own owner label, network and control plane), so it
never touches a lab the user has up, nor the pytest session's.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.backends.docker import engine as docker_engine
from lab.errors import LabError
from tests.conftest import REAL_CACHE_DIR

pytestmark = pytest.mark.integration
PHASE = re.compile(r"^\s*[\d.]+s (prepare|inject|detect)$")


@pytest.fixture
def own_lab(tmp_path):
    """Environment of a lab of its own; `nodelab down` in it at the end, checked empty."""
    if os.geteuid() != 0:
        pytest.skip("needs root: node containers, gdb on PID 1")
    try:
        engine = docker_engine.docker_client(timeout=10)
    except LabError as exc:
        pytest.skip(f"no docker engine answers ({exc}); run `nodelab setup` first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODELAB_")}
    env.update(NODELAB_STATE_DIR=str(tmp_path / "state"), NODELAB_REPORTS_DIR=str(tmp_path / "reports"),
               PYTHONUNBUFFERED="1")
    if REAL_CACHE_DIR:
        env["NODELAB_CACHE_DIR"] = REAL_CACHE_DIR
    owner = subprocess.run([sys.executable, "-c", "from lab.owned.state import owner_label; print(owner_label())"],
                           env=env, capture_output=True, text=True, timeout=60).stdout.strip()
    yield env, engine, owner
    down = subprocess.run([sys.executable, "-m", "lab.cli", "down"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert engine.containers.list(all=True, filters={"label": f"nodelab.owner={owner}"}) == []
    assert engine.networks.list(filters={"label": f"nodelab.owner={owner}"}) == []
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["resources"] == [], state
    assert subprocess.run(["pgrep", "-f", str(tmp_path / "state")], capture_output=True).stdout == b""
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path / "state") not in mounts


def start_run(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab.cli", "run", "cookie", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def read_until_phase(proc, phase: str, seen: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line.rstrip())
        m = PHASE.match(line.rstrip())
        if m and m.group(1) == phase:
            return
        assert time.monotonic() < deadline, "\n".join(seen[-30:])
    raise AssertionError(f"the run ended before its {phase} phase:\n" + "\n".join(seen[-30:]))


def pid1_status(host_pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{host_pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_sigkill_inside_the_gdb_window_leaves_pid1_alive_and_running(own_lab):
    env, engine, owner = own_lab
    proc, seen = start_run(env, "--target", "xenial-ga"), []
    try:
        read_until_phase(proc, "inject", seen)
        node = engine.containers.list(filters={"label": [f"nodelab.owner={owner}", "nodelab.role=node"]})[0]
        node.reload()
        host_pid = node.attrs["State"]["Pid"]
        deadline = time.monotonic() + 120
        while pid1_status(host_pid)["TracerPid"].strip() == "0":   # gdb attached to the node's PID 1
            assert time.monotonic() < deadline, "gdb never attached to PID 1 within 120 s of the injection"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)   # the controller and everything of its session
        killed_while = pid1_status(host_pid)
    finally:
        proc.kill()
        proc.wait()
    assert killed_while["TracerPid"].strip() != "0"
    # gdb finishes its batch and detaches by itself; PID 1 never stays stopped.
    deadline = time.monotonic() + 90
    while pid1_status(host_pid)["TracerPid"].strip() != "0":
        assert time.monotonic() < deadline, f"PID 1 still traced 90 s after the kill: {pid1_status(host_pid)}"
        time.sleep(0.5)
    for _ in range(10):   # and it keeps running: not stopped, not dead, over a few seconds
        status = pid1_status(host_pid)
        assert status["State"][0] in "RSD", status
        time.sleep(0.5)
    node.reload()
    assert node.status == "running", node.attrs["State"]
    state = subprocess.run(["docker", "exec", node.name, "systemctl", "is-system-running"], capture_output=True,
                           text=True, timeout=60).stdout.strip()
    assert state in ("running", "degraded"), state
    bus = subprocess.run(["docker", "exec", node.name, "dbus-send", "--system", "--print-reply",
                          "--reply-timeout=5000", "--dest=org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                          "org.freedesktop.DBus.Peer.Ping"], capture_output=True, text=True, timeout=60)
    # Killed before the write, the bus still answers; recorded either way for the reader.
    print(f"PID 1 {status['State']}, systemd {state}; system-bus Ping to systemd1: "
          f"{'answered' if bus.returncode == 0 else 'no answer'} {bus.stdout.strip()} {bus.stderr.strip()}")


def test_sigint_mid_run_tears_down_reports_interrupted_and_exits_130(own_lab, tmp_path):
    env, engine, _ = own_lab
    proc, seen = start_run(env, "--target", "bookworm"), []
    try:
        read_until_phase(proc, "inject", seen)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    seen += out.splitlines()
    assert proc.returncode == 130, "\n".join(seen[-30:])
    assert "interrupted by SIGINT" in seen[-1], seen[-1]
    reports = list((tmp_path / "reports").glob("cookie-bookworm-*.json"))
    assert len(reports) == 1, reports
    report = json.loads(reports[0].read_text())
    assert report["verdict"] == "interrupted", report["verdict_reason"]
    assert "during inject" in report["verdict_reason"] and "teardown" in report["phases"]
    assert report["logs"] and all(Path(p).exists() for p in report["logs"])   # the node's journal was kept
    assert not [c for c in engine.containers.list(all=True) if c.name == report["environment"]["node"]]
