"""The pytest plugin makes every scenario module's test, with the same options."""

import subprocess
import sys
from pathlib import Path

from lab import pytest_plugin
from lab.scenario import catalog

ROOT = Path(__file__).resolve().parent.parent


def test_every_shipped_scenario_gets_one_test_per_primary_run():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "scenarios"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120).stdout
    collected = {line for line in out.splitlines() if "::" in line}
    expected = {f"scenarios/test_{s.name}.py::test_{s.name}[{t}-{v}]" if v else
                f"scenarios/test_{s.name}.py::test_{s.name}[{t}]"
                for s in catalog.shipped().values() for t, v in s.runs()}
    assert len(expected) == 14 and collected == expected   # memcg's and memstall's are skipped: see below


def test_on_the_qemu_backend_each_scenario_makes_its_declared_vm_runs_and_says_why_not_the_others():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-rs", "scenarios", "--backend", "qemu"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    collected = {line.split("::")[1] for line in out.splitlines() if "::" in line}
    assert {"test_cookie[xenial-ga]", "test_cookie[bookworm]"} <= collected
    assert "test_mountunits[xenial-ga-small]" in collected   # the VM-sized churn, on the affected target only
    assert not {"test_mountunits[xenial-ga]", "test_mountunits[bookworm]"} & collected
    assert {"test_pulls[none]", "test_apiqps[none]"} <= collected   # skipped, with the reason
    assert {"test_memcg[xenial-ga]", "test_memcg[bookworm]"} <= collected
    assert {"test_memstall[xenial-ga-default]", "test_memstall[xenial-ga-eviction]"} <= collected


def test_a_kernel_bound_scenario_on_container_nodes_is_skipped_saying_the_hosts_kernel_decides():
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "scenarios", "-k", "memcg or memstall"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    skipped = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert out.returncode == 0 and "4 skipped" in out.stdout, out.stdout
    assert skipped == ["SKIPPED [4] lab/pytest_plugin.py: the docker backend lacks own_kernel (each node boots its "
                       "target's own kernel; here every node runs the lab host's)"], skipped


def test_the_made_test_hands_target_variant_and_its_own_params_to_the_run(monkeypatch):
    seen = []
    monkeypatch.setattr("lab.pytest_plugin.check", lambda *args, record, keep: seen.append(args))
    cookie = catalog.shipped()["cookie"]

    class Request:
        module = type("module", (), {"SCENARIO": cookie})
        config = type("config", (), {"stash": {}})()
    # --param cycles belongs to another scenario (mountunits): cookie's run does not get it.
    pytest_plugin._scenario_test("the lab", "xenial-ga", "", {"cookie": "4294967232", "cycles": "2"}, Request(), print)
    assert seen == [("the lab", cookie, "xenial-ga", "", {"cookie": "4294967232"})]


def test_a_run_with_the_expected_verdict_still_fails_when_its_detector_failed(monkeypatch):
    import pytest
    detector = {"source": "systemd-bus-monitor", "reason": "SystemdSilentOnSystemBus", "passes": False,
                "why": "did not fire after the injection"}
    report = {"scenario": "cookie", "target": "xenial-ga", "variant": "", "verdict": "reproduces",
              "verdict_reason": "symptoms seen", "expected": {"verdict": "reproduces"}, "report_file": "r.json",
              "observations": [], "detectors": [detector]}
    monkeypatch.setattr("lab.pytest_plugin.run", lambda *args: report)
    cookie = catalog.shipped()["cookie"]
    with pytest.raises(AssertionError, match="SystemdSilentOnSystemBus: fails: did not fire"):
        pytest_plugin.check("the lab", cookie, "xenial-ga")
    detector["passes"] = True
    assert pytest_plugin.check("the lab", cookie, "xenial-ga") is report


def test_a_run_whose_vm_kernel_locked_up_is_run_once_more_and_a_second_lockup_fails(monkeypatch):
    import pytest
    locked = {"scenario": "memcg", "target": "bookworm", "variant": "", "verdict": "inconclusive",
              "verdict_reason": "the node's own kernel locked up (...)", "expected": {"verdict": "immune"},
              "report_file": "first.json", "observations": [], "error": "LabError: wave 1: a pod did not complete",
              "kernel_lockups": {"count": 12, "first": ["[ 132.69] watchdog: BUG: soft lockup - CPU#1 stuck"]}}
    immune = {**locked, "verdict": "immune", "verdict_reason": "fix seen", "report_file": "second.json"}
    del immune["kernel_lockups"], immune["error"]
    runs = [locked, immune]
    monkeypatch.setattr("lab.pytest_plugin.run", lambda *args: runs.pop(0))
    memcg = catalog.shipped()["memcg"]
    recorded, kept = {}, []
    assert pytest_plugin.check("the lab", memcg, "bookworm", record=recorded.__setitem__, keep=kept.append) is immune
    assert recorded["rerun_after_node_hung"] == "first.json" and kept == [locked, immune]
    runs[:] = [locked, dict(locked, report_file="again.json")]
    with pytest.raises(AssertionError, match="locked up"):
        pytest_plugin.check("the lab", memcg, "bookworm")
    # No verdict without an error either (the steady state never held on a node that
    # stopped answering, as cookie's bookworm VM once did): run once more.
    steady = {k: v for k, v in locked.items() if k != "error"}
    runs[:] = [steady, immune]
    assert pytest_plugin.check("the lab", memcg, "bookworm") is immune
    assert not runs
    # A run that ended with a verdict stands, lockups or not.
    runs[:] = [dict(steady, verdict="reproduces", verdict_reason="symptoms seen; beware: ... locked up"), immune]
    with pytest.raises(AssertionError, match="locked up"):
        pytest_plugin.check("the lab", memcg, "bookworm")
    assert runs == [immune]
    # A VM that froze without a word on its console (CI of 5bea916: cookie's bookworm
    # VM, console silent after 92 s, SSH unanswered): run once more too.
    frozen = {k: v for k, v in steady.items() if k != "kernel_lockups"}
    frozen["node_unanswering"] = "nodelab-cookie-bookworm-1 did not run `true` within 30 s over SSH (ssh: no answer)"
    runs[:] = [frozen, immune]
    assert pytest_plugin.check("the lab", memcg, "bookworm") is immune and not runs
    # An inconclusive run on a kernel that did not lock up is not run again.
    runs[:] = [dict(immune, verdict="inconclusive", verdict_reason="wave 1 did not complete")]
    with pytest.raises(AssertionError, match="wave 1 did not complete"):
        pytest_plugin.check("the lab", memcg, "bookworm")
    assert not runs


def test_a_run_with_the_expected_verdict_still_fails_when_its_guide_does_not_match_the_node(monkeypatch):
    import pytest
    command = {"where": "node", "script": "journalctl -u kubelet | grep PLEG", "ok": False,
               "missing": ["PLEG is not healthy"], "output": "-- No entries --"}
    guide = {"file": "scenarios/guides/cookie.md", "checked": True, "ok": False, "commands": [command]}
    report = {"scenario": "cookie", "target": "xenial-ga", "variant": "", "verdict": "reproduces",
              "verdict_reason": "symptoms seen", "expected": {"verdict": "reproduces"}, "report_file": "r.json",
              "observations": [], "guide": guide}
    monkeypatch.setattr("lab.pytest_plugin.run", lambda *args: report)
    cookie = catalog.shipped()["cookie"]
    recorded = {}
    with pytest.raises(AssertionError, match=r"does not match the broken node:\n.*missing \['PLEG is not healthy'\]"):
        pytest_plugin.check("the lab", cookie, "xenial-ga", record=recorded.__setitem__)
    assert recorded["guide"] == "0/1 commands show what scenarios/guides/cookie.md says"
    command["ok"] = True
    assert pytest_plugin.check("the lab", cookie, "xenial-ga") is report
    # A form the guide does not describe (another variant) is reported, not judged.
    report["guide"] = {"file": "scenarios/guides/cookie.md", "checked": False, "why": "the guide describes ..."}
    assert pytest_plugin.check("the lab", cookie, "xenial-ga", record=recorded.__setitem__) is report
    assert recorded["guide"] == "not checked: the guide describes ..."


def test_a_param_no_scenario_takes_or_a_bad_value_is_a_usage_error():
    for args, message in ((["--param", "cokie=1"], "--param cokie: no collected scenario takes it"),
                          (["-k", "cookie", "--param", "cookie=0xzz"], "--param cookie=0xzz: cookie is a whole number")):
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "scenarios", *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 4 and message in out.stderr, out.stderr


def test_scenarios_are_found_from_any_directory(tmp_path):
    # What `nodelab run` uses: the installed package, not ./scenarios.
    code = "from lab.scenario import catalog; print(sorted(catalog.scenarios()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['apiqps', 'cookie', 'memcg', 'memstall', 'mountunits', 'pulls', 'zombies']", out.stderr


def test_a_form_a_target_cannot_have_is_skipped_with_the_reason():
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                          "scenarios/test_memstall.py", "--backend", "qemu", "--target", "xenial-ga",
                          "--variant", "earlyoom"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "1 skipped" in out.stdout, out.stdout + out.stderr
    assert "SKIPPED [1] lab/pytest_plugin.py: earlyoom is not in ubuntu xenial's archive" in out.stdout
    from lab.scenario import catalog
    memstall = catalog.shipped()["memstall"]
    assert memstall.cannot_run_on("bookworm", memstall.variant_params("earlyoom")) == ""
    assert memstall.cannot_run_on("xenial-ga", memstall.variant_params("eviction")) == ""


def test_the_session_ends_with_every_run_and_why_the_ones_that_missed_did():
    import pytest
    from lab.pytest_plugin import _REPORTS
    fine = {"scenario": "memcg", "target": "xenial-ga", "variant": "", "verdict": "reproduces",
            "verdict_reason": "symptoms seen", "expected": {"verdict": "reproduces"}, "report_file": "a.json",
            "total_seconds": 330.1, "observations": []}
    missed = {"scenario": "cookie", "target": "bookworm", "variant": "", "verdict": "inconclusive",
              "verdict_reason": "the node's own kernel locked up (21 console lines, ...)",
              "expected": {"verdict": "immune"}, "report_file": "b.json", "total_seconds": 322.0,
              "logs": ["/r/cookie-bookworm-1/console.txt"], "error": "LabError: wave 1 did not complete",
              "kernel_lockups": {"count": 21, "first": ["[ 89.6] rcu: INFO: rcu_preempt detected stalls"]},
              "observations": [{"kind": "steady-state", "name": "node-ready", "seen": False, "at": None, "t": 322,
                                "summary": "Ready=Unknown Kubelet stopped posting node status."},
                               {"kind": "steady-state", "name": "system-bus-answers", "seen": True, "at": None,
                                "t": 30, "summary": "serial 7"}]}

    class Terminal:
        def __init__(self):
            self.lines = []

        def section(self, title):
            self.lines.append(f"== {title}")

        def write_line(self, line):
            self.lines.append(line)

    class Config:
        stash = pytest.Stash()

        @staticmethod
        def getoption(name):
            return 1

    Config.stash[_REPORTS] = [fine, missed]
    terminal = Terminal()
    pytest_plugin.pytest_terminal_summary(terminal, Config)
    assert terminal.lines == [
        "== scenario runs",
        "memcg on xenial-ga: reproduces (expected reproduces) in 330.1 s",
        "cookie on bookworm: inconclusive (expected immune) in 322.0 s",
        "  why: the node's own kernel locked up (21 console lines, ...)",
        "  error: LabError: wave 1 did not complete",
        "  not seen: [steady-state] node-ready: Ready=Unknown Kubelet stopped posting node status.",
        "  console: [ 89.6] rcu: INFO: rcu_preempt detected stalls",
        "  node logs: /r/cookie-bookworm-1",
        "  report: b.json"]
