"""The shipped node-problem-detector configs and programs, and the lab's
reading of NPD's custom plugin protocol (programs run here, on the host)."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.backends.node import Node, Result
from lab.nodetools import npd
from lab.scenario import catalog, detection
from lab.scenario.evidence import SYMPTOM, Timeline
from lab.scenario.record import IMMUNE, REPRODUCES

DETECTORS = Path(__file__).resolve().parent.parent / "detectors"
SHIPPED = npd.shipped_configs()


class LocalNode(Node):
    """Runs commands on this host, through the Node interface's in-node timeout."""
    name, backend = "local", "test"

    def __init__(self, env=None):
        self.env = env

    def _exec(self, argv, timeout, stdin):
        try:
            p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=self.env)
        except subprocess.TimeoutExpired:
            return Result(-1, "", "", timed_out=True)
        return Result(p.returncode, p.stdout.decode(), p.stderr.decode())

    def interactive_argv(self, argv):
        return argv

    def put_file(self, path, content, mode=0o644):
        Path(path).write_bytes(content if isinstance(content, bytes) else content.encode())
        os.chmod(path, mode)

    def get_file(self, path):
        return Path(path).read_bytes()

    def testinfra_host(self):
        return None


def _config(tmp_path, program: str, *, max_output=80, timeout="2s", interval="5s", rule_timeout=None) -> npd.Monitor:
    path = tmp_path / "check.sh"
    path.write_text("#!/bin/sh\n" + program)
    path.chmod(0o755)
    rule = {"type": "permanent", "condition": "Broken", "reason": "IsBroken", "path": str(path)}
    if rule_timeout:
        rule["timeout"] = rule_timeout
    config = {"plugin": "custom", "source": "test-monitor",
              "pluginConfig": {"invoke_interval": interval, "timeout": timeout, "max_output_length": max_output},
              "conditions": [{"type": "Broken", "reason": "NotBroken", "message": "fine"}], "rules": [rule]}
    assert npd.problems(config, {"check.sh"}) == []
    return npd.parse("test", "test.json", config, {"check.sh": path.read_bytes()})


# -- the shipped detectors ---------------------------------------------------------
def test_a_detector_ships_for_each_node_local_incident_and_only_for_known_scenarios():
    incidents = {name for name, *_ in SHIPPED}
    assert {"cookie", "zombies", "mountunits", "memstall", "pulls", "apiqps"} <= incidents
    assert incidents <= set(catalog.shipped())


@pytest.mark.parametrize("name,file,config,programs", SHIPPED, ids=[f"{n}/{f}" for n, f, *_ in SHIPPED])
def test_every_shipped_config_passes_npds_validation_and_its_programs_parse(name, file, config, programs):
    assert npd.problems(config, set(programs)) == []
    monitor = npd.parse(name, file, config, programs)
    assert monitor.effective_timeout(monitor.rules[0]) < monitor.interval_s
    for rule in monitor.rules:
        program = DETECTORS / name / Path(rule.path).name
        assert os.access(program, os.X_OK), f"{program} is not executable"
        assert program.read_text().startswith("#!/bin/sh\n")
        # POSIX sh as Ubuntu 16.04 and Debian 12 run it (dash), and bash's POSIX mode
        for shell in ("dash", "bash"):
            if shutil.which(shell):
                subprocess.run([shell, "-n", str(program)], check=True)


def test_npds_refusals_are_named():
    good = {"plugin": "custom", "source": "s", "pluginConfig": {"timeout": "5s", "invoke_interval": "10s"},
            "conditions": [{"type": "C", "reason": "R", "message": "m"}],
            "rules": [{"type": "permanent", "condition": "C", "reason": "P", "path": "/x/check.sh", "timeout": "3s"}]}
    assert npd.problems(good, {"check.sh"}) == []
    bad = {**good, "plugin": "filelog",
           "rules": [{"type": "permanent", "condition": "Other", "reason": "P", "path": "/x/check.sh", "timeout": "6s"},
                     {"type": "sometimes", "reason": "Q", "path": "relative.sh"}]}
    found = "\n".join(npd.problems(bad, {"check.sh"}))
    for expected in ('only "custom"', "greater than the global timeout", "no preset default condition",
                     "type must be permanent or temporary", "is not absolute"):
        assert expected in found
    assert "names no program shipped" in "\n".join(npd.problems(good, {"other.sh"}))
    slow = {**good, "pluginConfig": {"timeout": "20s", "invoke_interval": "10s"}}
    assert "longer than invoke_interval" in "\n".join(npd.problems(slow, {"check.sh"}))


# -- the protocol ---------------------------------------------------------------------
@pytest.mark.parametrize("program,status", [("echo fine; exit 0", npd.OK), ("echo broken; exit 1", npd.NONOK),
                                            ("echo what; exit 3", npd.UNKNOWN)])
def test_exit_codes_read_as_npd_reads_them(tmp_path, program, status):
    monitor = _config(tmp_path, program)
    inv = npd.invoke(LocalNode(), monitor, monitor.rules[0])
    assert inv.status == status and inv.message in ("fine", "broken", "what")


def test_output_is_trimmed_and_cut_to_max_output_length(tmp_path):
    monitor = _config(tmp_path, "printf '  %s\\n\\n' $(printf 'x%.0s' $(seq 1 50)); exit 1", max_output=20)
    inv = npd.invoke(LocalNode(), monitor, monitor.rules[0])
    assert inv.status == npd.NONOK and inv.message == "x" * 20


def test_a_program_past_its_timeout_is_unknown(tmp_path):
    monitor = _config(tmp_path, "sleep 30; exit 1", timeout="2s", interval="5s", rule_timeout="1s")
    assert monitor.effective_timeout(monitor.rules[0]) == 1
    t0 = time.monotonic()
    inv = npd.invoke(LocalNode(), monitor, monitor.rules[0])
    assert inv.status == npd.UNKNOWN and inv.message.startswith("Timeout when running plugin")
    assert time.monotonic() - t0 < 10


def test_the_watch_keeps_each_status_change_and_the_judge_reads_them(tmp_path):
    flag = tmp_path / "broken"
    monitor = _config(tmp_path, f"if [ -e {flag} ]; then echo broken; exit 1; fi; echo fine", interval="0.5s",
                      timeout="0.5s")
    timeline = Timeline()
    watch = npd.DetectorWatch(LocalNode(), [monitor]).start()
    time.sleep(2)
    timeline.injected_at = time.monotonic()
    flag.touch()
    time.sleep(2)
    timeline.observe("it-broke", SYMPTOM, True, "")
    flag.unlink()
    time.sleep(2)
    invocations = watch.stop()[npd.DetectorWatch.key(monitor, monitor.rules[0])]
    assert [t.status for t in npd.transitions(invocations)] == [npd.OK, npd.NONOK, npd.OK]
    judged = detection.judge(invocations, timeline, REPRODUCES)
    assert judged["passes"] and 0 <= judged["fired_after_injection_s"] < 2
    assert "it-broke" in judged["before_symptoms_s"]
    assert not detection.judge(invocations, timeline, IMMUNE)["passes"]
    early = Timeline()
    early.injected_at = invocations[-1].at + 1   # every firing now lies before the "injection"
    assert "steady state" in detection.judge(invocations, early, REPRODUCES)["why"]
    assert detection.judge(invocations, timeline, "inconclusive")["passes"] is None
    assert detection.judge(invocations, timeline, IMMUNE, unjudged="a variant that is no test of it")["passes"] is None
    # A detector that only ever said Unknown after the injection (it could not run) does not pass an immune run.
    t = timeline.injected_at
    blind = [npd.Invocation(t - 1, npd.OK, "fine", 0.1), npd.Invocation(t + 1, npd.UNKNOWN, "no such file", 0.1)]
    assert "only Unknown" in detection.judge(blind, timeline, IMMUNE)["why"]


def test_stopping_the_watch_takes_one_last_answer_from_every_rule(tmp_path):
    monitor = _config(tmp_path, "echo fine", interval="30s", timeout="2s")
    watch = npd.DetectorWatch(LocalNode(), [monitor]).start()
    time.sleep(0.5)
    stopped = time.monotonic()
    invocations = watch.stop()[npd.DetectorWatch.key(monitor, monitor.rules[0])]
    assert len(invocations) == 2 and invocations[-1].at >= stopped
    assert watch.stop()[npd.DetectorWatch.key(monitor, monitor.rules[0])] == invocations   # once only


# -- the check programs, against real processes or recorded tool output ----------------
def _program(incident: str, name: str) -> str:
    return str(DETECTORS / incident / name)


def test_zombies_check_names_a_parent_that_does_not_reap(tmp_path):
    # A parent that forks children which exit at once and are never reaped.
    code = "import os, time\nfor _ in range(8):\n    os.fork() or os._exit(0)\ntime.sleep(30)\n"
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(1)
        res = subprocess.run(["sh", _program("zombies", "check_zombies.sh"), "5", "100"], capture_output=True, text=True)
        assert res.returncode == 1 and f"under PID {parent.pid}" in res.stdout and res.stdout.startswith("8 zombies")
        res = subprocess.run(["sh", _program("zombies", "check_zombies.sh"), "20", "100"], capture_output=True,
                             text=True)
        assert res.returncode == 0 and "most zombies under one parent: 8" in res.stdout
    finally:
        parent.kill()
        parent.wait()


def _fake_tools(tmp_path, **scripts) -> dict:
    for name, body in scripts.items():
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")


ANSWER = "echo 'method return time=1.0 sender=:1.0 -> destination=:1.9 serial=4242 reply_serial=2'"
SILENT = "echo 'Error org.freedesktop.DBus.Error.NoReply: Did not receive a reply.' >&2; exit 1"


@pytest.mark.parametrize("systemd1,daemon,systemctl,rc,says", [
    (ANSWER, ANSWER, "exit 0", 0, "reply serial 4242"),
    (SILENT, ANSWER, "echo Version=229", 1, "answers on its private socket but not on the system bus"),
    (SILENT, SILENT, "echo Version=229", 1, "the system bus itself (dbus-daemon) does not answer"),
    (SILENT, ANSWER, "exit 1", 2, "neither"),
])
def test_systemd_bus_check_tells_a_silent_bus_from_a_silent_systemd(tmp_path, systemd1, daemon, systemctl, rc, says):
    dbus = f'case "$*" in *--dest=org.freedesktop.systemd1*) {systemd1} ;; *) {daemon} ;; esac'
    env = _fake_tools(tmp_path, **{"dbus-send": dbus, "systemctl": systemctl})
    res = subprocess.run(["sh", _program("cookie", "check_systemd_bus.sh"), "1"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == rc and says in res.stdout


def test_mount_units_check_counts_only_units_whose_target_is_gone(tmp_path):
    units = "".join(f"run-r{i}.scope loaded active running Kubernetes transient mount for /var/lib/kubelet/pods/p{i}/v\n"
                    for i in range(5)) + "init.scope loaded active running System and Service Manager\n"
    (tmp_path / "units").write_text(units)
    (tmp_path / "mountinfo").write_text("63 73 0:39 / /var/lib/kubelet/pods/p0/v rw - tmpfs tmpfs rw\n")
    env = {**_fake_tools(tmp_path, systemctl=f"cat {tmp_path / 'units'}"),
           "NODELAB_MOUNTINFO": str(tmp_path / "mountinfo")}
    res = subprocess.run(["sh", _program("mountunits", "check_mount_units.sh"), "3"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 1 and res.stdout.startswith("4 'Kubernetes transient mount' units") and "(5 loaded)" in \
        res.stdout
    res = subprocess.run(["sh", _program("mountunits", "check_mount_units.sh"), "4"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0
    # A node with thousands of mounts (far more than one command-line argument holds) counts alike.
    with (tmp_path / "mountinfo").open("a") as f:
        f.writelines(f"{100 + i} 73 0:40 / /var/lib/docker/overlay2/{'x' * 64}{i}/merged rw - overlay overlay rw\n"
                     for i in range(3000))
    res = subprocess.run(["sh", _program("mountunits", "check_mount_units.sh"), "3"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 1 and res.stdout.startswith("4 'Kubernetes transient mount' units")


@pytest.mark.skipif(not Path("/proc/pressure/memory").exists(), reason="this kernel has no PSI")
def test_memory_pressure_check_reads_psi_against_its_threshold():
    # The no-PSI path (major faults and kswapd, Linux 4.4) is exercised on xenial-ga VM runs only.
    script = _program("memstall", "check_memory_pressure.sh")
    quiet = subprocess.run(["sh", script, "100"], capture_output=True, text=True)
    assert quiet.returncode == 0 and "full avg10=" in quiet.stdout
    edge = subprocess.run(["sh", script, "0"], capture_output=True, text=True)
    assert edge.returncode == 1 and "every task waited on memory" in edge.stdout


def _docker_fake(tmp_path, sandboxes: dict, containers: dict, now: float) -> str:
    """A docker(1) that answers as dockershim's labels would: `sandboxes` and
    `containers` map an ID to (pod uid, seconds since it started)."""
    def stamp(age):
        return time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime(now - age))
    (tmp_path / "sandboxes").write_text("".join(f"{i} {uid}\n" for i, (uid, _) in sandboxes.items()))
    (tmp_path / "containers").write_text("".join(f"{i} {uid}\n" for i, (uid, _) in containers.items()))
    (tmp_path / "started").write_text("".join(f"{i} {stamp(age)}\n" for i, (_, age) in
                                              {**sandboxes, **containers}.items()))
    return (f'case "$*" in\n'
            f'  *podsandbox*) cat {tmp_path}/sandboxes ;;\n'
            f'  "ps -a "*) cut -d" " -f2 {tmp_path}/containers ;;\n'
            f'  ps*) cat {tmp_path}/containers ;;\n'
            f'  inspect*) shift 3; for id in "$@"; do grep "^$id " {tmp_path}/started | cut -d" " -f2; done ;;\n'
            f'esac\n')


def test_image_pull_queue_check_counts_pods_waiting_for_their_first_container(tmp_path):
    now = time.time()
    docker = _docker_fake(tmp_path, {"sA": ("uA", 40), "sB": ("uB", 25), "sC": ("uC", 3), "sD": ("uD", 60)},
                          {"cD": ("uD", 55)}, now)
    env = _fake_tools(tmp_path, docker=docker)
    script = _program("pulls", "check_image_pull_queue.sh")
    res = subprocess.run(["sh", script, "2", "10"], capture_output=True, text=True, env=env)
    assert res.returncode == 1 and re.match(r"2 pods have waited 10 s or more for their first container \(longest "
                                            r"4[01] s\)", res.stdout)
    # One slow pull alone (the immune run: B pulled beside it) is no queue.
    res = subprocess.run(["sh", script, "2", "30"], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and "3 pods without a container yet, 1 of them" in res.stdout
    res = subprocess.run(["sh", script], capture_output=True, text=True,
                         env=_fake_tools(tmp_path, docker="echo 'Cannot connect to the Docker daemon' >&2; exit 1"))
    assert res.returncode == 2 and "Cannot connect" in res.stdout


def _pending_fixture(tmp_path, pending: list[str], running: dict, now: float, known_running=(), pretty=False) -> dict:
    """curl(1) answering the API server's list of this node's Pending pods (the
    uids given, each with an owner whose uid matches no container; those in
    `known_running` with a container status the API knows is running), docker(1)
    with running containers: id -> (pod uid, seconds since it started). Each
    call's arguments and standard input are kept in tmp_path/calls, with the
    files curl was given as --cert/--key/--cacert."""
    def item(i, uid):
        status = {"phase": "Pending"}
        if uid in known_running:
            status["initContainerStatuses"] = [{"name": "init", "state": {"running": {"startedAt": "x"}}}]
        else:
            status["containerStatuses"] = [{"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}]
        return {"metadata": {"name": f"p{i}", "uid": uid, "ownerReferences": [{"uid": f"owner-{i}"}]},
                "status": status}
    body = {"kind": "PodList", "apiVersion": "v1", "items": [item(i, uid) for i, uid in enumerate(pending)]}
    (tmp_path / "pods.json").write_text(json.dumps(body, indent=2 if pretty else None, separators=None if pretty
                                                   else (",", ":")))
    (tmp_path / "started").write_text("".join(
        f"{uid} {time.strftime('%Y-%m-%dT%H:%M:%S.123456789Z', time.gmtime(now - age))}\n"
        for uid, age in running.values()))
    ids = " ".join(running) or "''"
    curl = (f'echo "curl $*" >> {tmp_path}/calls\n'
            f'case " $* " in *" -K - "*) sed "s/^/stdin: /" >> {tmp_path}/calls ;; esac\n'
            f'while [ $# -gt 0 ]; do case "$1" in --cert|--key|--cacert) echo "file $1: $(cat "$2" 2>/dev/null)" >> '
            f'{tmp_path}/calls; shift ;; esac; shift; done\n'
            f'cat {tmp_path}/pods.json\n')
    return _fake_tools(tmp_path, curl=curl,
                       docker=f'echo "docker $*" >> {tmp_path}/calls\n'
                              f'case "$1" in ps) printf "%s\\n" {ids} ;; '
                              f'inspect) cat {tmp_path}/started ;; esac\n')


def test_pods_pending_while_running_check_compares_the_api_with_the_runtime(tmp_path):
    now = time.time()
    kubeconfig = tmp_path / "kubelet.kubeconfig"   # the lab's: JSON, a token, the CA inline
    kubeconfig.write_text(json.dumps({
        "clusters": [{"name": "lab", "cluster": {"server": "https://10.9.0.1:6443",
                                                 "certificate-authority-data": base64.b64encode(b"THE CA").decode()}}],
        "users": [{"name": "kubelet", "user": {"token": "s3cret"}}]}, indent=2))
    script = _program("apiqps", "check_pods_pending_while_running.sh")
    running = {f"c{i}": (f"u{i}", 20 + i) for i in range(6)} | {"cX": ("u9", 3), "cY": ("running-in-api", 60),
                                                                 "cZ": ("init-running", 60)}
    env = _pending_fixture(tmp_path, [f"u{i}" for i in range(6)] + ["u9", "not-started", "init-running"], running,
                           now, known_running={"init-running"})
    res = subprocess.run(["sh", script, str(kubeconfig), "5", "15", "node-1"], capture_output=True, text=True, env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert re.match(r"6 pods Pending in the API server, which knows of no running container of theirs, while docker "
                    r"has run one for 15 s or more \(longest 2[56] s\)", res.stdout)
    calls = (tmp_path / "calls").read_text()
    # The token goes to curl on its standard input, never on its command line.
    assert 'stdin: header = "Authorization: Bearer s3cret"' in calls
    assert "s3cret" not in "".join(line for line in calls.splitlines(True) if line.startswith("curl "))
    assert "file --cacert: THE CA" in calls and "-A check_pods_pending_while_running" in calls
    assert "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1%2Cstatus.phase%3DPending" in calls
    # Below the count (the immune run's few slow starters) it says what it saw and is OK; a pod
    # whose init container the API knows is running is not counted.
    res = subprocess.run(["sh", script, str(kubeconfig), "7", "15", "node-1"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout
    assert "7 pods Pending in the API server with running containers it does not know of, 6 of them" in res.stdout
    # The API server's pretty-printed answer (a proxy may ask for it) reads the same.
    env = _pending_fixture(tmp_path, [f"u{i}" for i in range(6)], running, now, pretty=True)
    res = subprocess.run(["sh", script, str(kubeconfig), "5", "15", "node-1"], capture_output=True, text=True, env=env)
    assert res.returncode == 1 and res.stdout.startswith("6 pods Pending"), res.stdout


def test_pods_pending_while_running_check_reads_a_kubeadm_kubeconfig_and_says_unknown_when_it_cannot_ask(tmp_path):
    kubeconfig = tmp_path / "kubelet.conf"   # kubeadm's: YAML, client certificate and key in one file
    kubeconfig.write_text("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority: /etc/kubernetes/pki/ca.crt\n"
                          "    server: https://cp.example:6443\n  name: k\nusers:\n- name: n\n  user:\n"
                          "    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n"
                          "    client-key: '/var/lib/kubelet/pki/kubelet-client-current.pem'\n")
    script = _program("apiqps", "check_pods_pending_while_running.sh")
    env = _pending_fixture(tmp_path, [], {}, time.time())
    res = subprocess.run(["sh", script, str(kubeconfig), "5", "15", "n"], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and "0 pods Pending" in res.stdout, res.stdout + res.stderr
    calls = (tmp_path / "calls").read_text()
    assert ("--cacert /etc/kubernetes/pki/ca.crt --cert /var/lib/kubelet/pki/kubelet-client-current.pem --key "
            "/var/lib/kubelet/pki/kubelet-client-current.pem https://cp.example:6443/api/v1/pods?") in calls
    (tmp_path / "pods.json").write_text('{"kind":"Status","message":"pods is forbidden"}')
    res = subprocess.run(["sh", script, str(kubeconfig)], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "did not list pods" in res.stdout and "forbidden" in res.stdout
    res = subprocess.run(["sh", script, str(tmp_path / "missing")], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "cannot read kubeconfig" in res.stdout


def test_pods_pending_while_running_check_decodes_inline_certificates_and_removes_them(tmp_path):
    # A kubeconfig on one line (compact JSON), client certificate and key inline.
    b64 = {k: base64.b64encode(v).decode() for k, v in (("ca", b"CA"), ("cert", b"CERT"), ("key", b"KEY"))}
    kubeconfig = tmp_path / "inline.kubeconfig"
    kubeconfig.write_text(json.dumps({"clusters": [{"cluster": {"server": "https://10.9.0.1:6443",
                                                                "certificate-authority-data": b64["ca"]}}],
                                      "users": [{"user": {"client-certificate-data": b64["cert"],
                                                          "client-key-data": b64["key"]}}]}))
    script = _program("apiqps", "check_pods_pending_while_running.sh")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**_pending_fixture(tmp_path, [], {}, time.time()), "TMPDIR": str(scratch)}
    res = subprocess.run(["sh", script, str(kubeconfig), "5", "15", "n"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    calls = (tmp_path / "calls").read_text()
    assert "file --cacert: CA" in calls and "file --cert: CERT" in calls and "file --key: KEY" in calls
    assert list(scratch.iterdir()) == []   # the decoded key does not outlive the check
    kubeconfig.write_text(kubeconfig.read_text().replace(b64["key"], "!!not-base64!!"))
    res = subprocess.run(["sh", script, str(kubeconfig)], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "cannot decode the certificate data" in res.stdout
    assert list(scratch.iterdir()) == []
