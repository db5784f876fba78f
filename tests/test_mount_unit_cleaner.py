"""The shipped cleaner stops only transient mount scopes whose target is gone
(systemctl is a recording fake here; the scenario runs it against real systemd)."""

import os
import subprocess

from lab import paths

UNITS = """\
init.scope loaded active running System and Service Manager
run-r1.scope loaded active running Kubernetes transient mount for /var/lib/kubelet/pods/a/volumes/kubernetes.io~secret/tok
run-r2.scope loaded active running Kubernetes transient mount for /var/lib/kubelet/pods/b/volume-subpaths/cm/main/0
run-r3.scope loaded active running Kubernetes systemd probe
"""
MOUNTINFO = "63 73 0:39 / /var/lib/kubelet/pods/a/volumes/kubernetes.io~secret/tok rw - tmpfs tmpfs rw\n"


def test_only_units_whose_target_is_no_longer_mounted_are_stopped(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "systemctl"
    fake.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
case "$1" in list-units) printf '%s' '{UNITS}' ;; esac
""")
    fake.chmod(0o755)
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", NODELAB_MOUNTINFO=str(tmp_path / "mountinfo"))
    out = subprocess.run(["sh", str(paths.asset("nodelab-mount-unit-cleaner"))], env=env, capture_output=True,
                         text=True, check=True).stdout
    stops = [line for line in calls.read_text().splitlines() if line.startswith("stop")]
    assert stops == ["stop run-r2.scope"]
    assert "stopped 1 stale transient mount unit(s)" in out
