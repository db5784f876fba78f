"""A workshop on a vagrant machine, end to end, as issue 19 describes it: the
machine `vagrant up` booted from the lab's box is broken with cookie (NotReady,
`PLEG is not healthy`), every command of the cookie guide shows on it what the
guide says, a hand `systemctl daemon-reexec` repairs it and `check` says so,
and the reset destroys the machine, its disk and vagrant-libvirt's network.

Needs what `tox -e workshop-vm` prepares (`nodelab box build xenial-ga`,
`vagrant up xenial-ga` in the repository); skipped, saying which, without it.
Runs on the lab the user has (a vagrant machine is adopted, not made).
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab import paths
from lab.errors import LabError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
# The user's lab, read before the fast tests' isolation (conftest) replaces it:
# the box carries that lab's SSH key and kubelet.
REAL = {"NODELAB_STATE_DIR": paths.state_dir(), "NODELAB_CACHE_DIR": paths.cache_dir(),
        "NODELAB_REPORTS_DIR": paths.reports_dir()}


def _virsh(*args: str) -> str:
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True,
                          check=True).stdout


def _missing(why: str):
    """A skip, except under `tox -e workshop-vm`, which made the machine: there a missing one fails."""
    if os.environ.get("NODELAB_WORKSHOP_REQUIRED"):
        pytest.fail(f"tox -e workshop-vm brought the machine up, yet: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture
def machine(monkeypatch):
    if os.geteuid() != 0:
        _missing("needs root (libvirt's system instance, the lab)")
    for command in ("vagrant", "virsh"):
        if shutil.which(command) is None:
            _missing(f"{command} missing: `nodelab box build xenial-ga` installs it")
    monkeypatch.setenv("VAGRANT_CWD", str(REPO))
    for name, value in REAL.items():
        monkeypatch.setenv(name, str(value))
    from lab.backends.vagrant.backend import workshop_machine
    try:
        return workshop_machine("xenial-ga")
    except LabError as exc:
        _missing(f"no workshop machine: {exc}")


def test_break_investigate_repair_check_and_destroy_on_a_vagrant_machine(machine):
    from lab.cluster.lab import Lab
    from lab.progress import say
    from lab.scenario import catalog, guide as guides, runner, workshop

    cookie = catalog.get("cookie")
    lab = Lab(say=say, backend="vagrant")
    report = workshop.break_node(lab, cookie, "xenial-ga", {}, "")
    assert report["verdict"] == "broken", report["verdict_reason"]
    try:
        ctx = workshop.attach(lab, cookie)
        ready = ctx.kube.condition(ctx.node.name)
        assert ready.status != "True" and "PLEG is not healthy" in ready.message, ready
        checked = guides.check(guides.parse(cookie.guide), ctx.node, runner.guide_env(lab, ctx))
        wrong = [f"{c.where}$ {c.script}: missing {c.missing}" for c in checked if not c.ok]
        assert not wrong, "\n".join(wrong)
        assert any("0x1000000" in c.output for c in checked if "cookie" in c.script)   # gdb: past 0xffffffff

        repaired, _ = workshop.check(lab, cookie)
        assert not repaired   # nothing was done yet
        ctx.node.run(["systemctl", "daemon-reexec"], timeout=120)   # the participant's repair
        repaired, seen = workshop.check(lab, cookie)
        assert repaired, [(o.name, o.seen, o.summary) for o in seen]
    finally:
        if workshop.current():
            workshop.reset(lab, catalog.get)
    assert machine["domain"] not in _virsh("list", "--all", "--uuid")
    assert "xenial-ga.img" not in _virsh("vol-list", "default")   # the machine's disk (the box's stays)
    assert "vagrant-libvirt" not in _virsh("net-list", "--all")
