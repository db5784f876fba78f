"""The memory-pressure witnesses and workload (lab.fixtures.pressure, memstall's expectation)."""

import os
import signal
import subprocess
import time

import pytest

from lab.fixtures import pressure
from lab.recipes import cbuild
from lab.scenario import catalog


def _probe_rows(out, pause_s: float) -> list:
    proc = subprocess.Popen([str(cbuild.static_binary("nodelab-stallprobe.c", "nodelab-stallprobe")), str(out), "100"])
    try:
        time.sleep(1.3)
        if pause_s:
            os.kill(proc.pid, signal.SIGSTOP)   # what a stalled node does to it, from outside
            time.sleep(pause_s)
            os.kill(proc.pid, signal.SIGCONT)
        time.sleep(1.3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return [tuple(float(p) for p in line.split()) for line in out.read_text().splitlines()]


def test_the_probe_reports_a_quiet_second_as_its_nap_and_a_stall_as_the_wait(tmp_path):
    quiet = pressure.ProbeFigures(_probe_rows(tmp_path / "quiet.log", 0))
    assert len(quiet.rows) >= 2 and all(len(r) == 7 for r in quiet.rows)
    assert 0.09 <= quiet.worst_gap_s < 0.5
    assert quiet.min_available_mib() > 0 and quiet.major_faults >= 0
    stalled = pressure.ProbeFigures(_probe_rows(tmp_path / "stalled.log", 1.6))
    assert stalled.worst_gap_s >= 1.5 and stalled.gaps_over(1.5) >= 1


def test_the_hog_grows_to_the_edge_holds_and_exits_by_itself(tmp_path):
    hog = cbuild.static_binary("nodelab-memhog.c", "nodelab-memhog")
    with open("/proc/meminfo") as f:
        available = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) // 1024
    # Leave all but 48 MiB of what is available: the test takes 48 MiB of the host, not its memory.
    out = subprocess.run([str(hog), str(available - 48), "16", "10", "1", str(tmp_path / "ws"), "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("file ") and any(x.startswith("edge ") for x in lines) and lines[-1].startswith("done ")
    grown = [int(x.split()[1]) for x in lines if x.startswith("grow ")]
    assert grown and grown == sorted(grown) and 32 <= grown[-1] <= 160
    assert subprocess.run([str(hog), "1"], capture_output=True).returncode == 2


def test_oom_victims_are_read_from_the_kernel_log_of_either_kernel():
    log = ("[  100.000000] nodelab-memhog invoked oom-killer: gfp_mask=0x24201ca, order=0\n"
           "[  101.250000] Out of memory: Kill process 812 (nodelab-memhog) score 901 or sacrifice child\n"
           "[  101.260000] Killed process 812 (nodelab-memhog) total-vm:1800000kB, anon-rss:1700000kB\n"   # 4.4
           "[  230.500000] Out of memory: Killed process 9100 (nodelab-memhog) total-vm:1900000kB, anon-rss:...\n"  # 6.1
           "[   50.000000] Killed process 77 (early) before the pressure\n")
    node = type("node", (), {"run": lambda self, *a, **k: type("r", (), {"stdout": log})()})()
    assert pressure.oom_kills(node, 90.0) == [(11.3, 812, "nodelab-memhog"), (140.5, 9100, "nodelab-memhog")]


def test_memstall_expects_its_verdict_from_kubelets_eviction_threshold_against_the_hogs_growth():
    memstall = catalog.shipped()["memstall"]

    def ctx(threshold: str):
        config = {"evictionHard": {"memory.available": threshold}, "systemReserved": {}}
        kube = type("kube", (), {"kubelet_config": lambda self, name: config})()
        node = type("node", (), {"name": "n", "run": lambda self, *a, **k: type("r", (), {"stdout": "2097152\n"})()})()
        return type("ctx", (), {"kube": kube, "node": node, "params": {}, "scratch": {},
                                "setting": lambda self, k: memstall.defaults[k].default})()
    # The hog grows 16 MiB every 500 ms: 320 MiB between two of kubelet's 10 s checks, plus 100 MiB.
    for threshold, verdict in (("100Mi", "reproduces"), ("400Mi", "reproduces"), ("600Mi", "immune"),
                               ("1Gi", "immune"), ("10%", "reproduces"), ("30%", "immune")):
        assert memstall.expected(ctx(threshold))[0] == verdict, threshold


def test_kubelets_eviction_settings_are_read_from_its_config_in_mib():
    from types import SimpleNamespace
    from lab.errors import LabError
    node = SimpleNamespace(name="n1", run=lambda cmd: SimpleNamespace(stdout="2048000\n"))   # MemTotal kB

    class Kube:
        config = {"evictionHard": {"memory.available": "600Mi"}, "systemReserved": {"memory": "300Mi"},
                  "kernelMemcgNotification": False}

        def kubelet_config(self, name):
            if self.config is None:
                raise LabError("kubelet configz: connection refused")
            return self.config

    kube = Kube()
    assert pressure.eviction_settings(kube, node) == {"threshold": "600Mi", "threshold_mib": 600.0,
                                                      "reserved": "300Mi", "memcg_notification": False}
    kube.config = {"evictionHard": {"memory.available": "10%"}}
    assert pressure.eviction_settings(kube, node)["threshold_mib"] == 200.0
    kube.config = {}
    assert pressure.eviction_settings(kube, node)["threshold_mib"] == 0.0
    assert pressure.mib("1Gi", node) == 1024.0 and round(pressure.mib("500M", node), 1) == 476.8
    kube.config = None
    assert pressure.eviction_settings(kube, node, answering=False) == {}
    with pytest.raises(LabError, match="connection refused"):
        pressure.eviction_settings(kube, node)
