"""The vagrant backend and its boxes, without vagrant or libvirt: what a box boots
with, how a workshop machine is found, and the errors a participant meets."""

import subprocess
from pathlib import Path

import pytest

from lab import host
from lab.backends import backend_class
from lab.backends.qemu.disk import VMImage
from lab.backends.vagrant import backend as vagrant, box
from lab.errors import LabError
from lab.recipes.targets import TARGETS

DOMAIN_XML = """<domain type='qemu'><name>main_xenial-ga</name><memory unit='KiB'>2097152</memory>
<vcpu placement='static'>2</vcpu><devices>
<serial type='file'><source path='/work/.vagrant/nodelab-xenial-ga-console.txt'/><target port='0'/></serial>
</devices></domain>"""


def test_a_box_boots_the_targets_own_kernel_staged_where_libvirts_qemu_can_read_it_and_asks_dhcp(tmp_path):
    image = VMImage(tmp_path, "xenial-ga")
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    (tmp_path / "manifest.json").write_text('{"kernel_release": "4.4.0-21-generic"}')
    key = tmp_path / "id_ed25519"
    key.with_suffix(".pub").write_text("ssh-ed25519 AAAAC3NzaBLOB nodelab\n")
    text = box.vagrantfile(TARGETS["xenial-ga"], image, "tcg", key)
    assert 'libvirt.driver = "qemu"' in text and f'config.ssh.private_key_path = "{key}"' in text
    assert 'FileUtils.cp(File.join(__dir__, "vmlinuz"), staged)' in text
    assert 'staged = "/var/lib/libvirt/images/nodelab-box-xenial-ga-' in text and "libvirt.initrd" not in text
    cmdline = text.split('libvirt.cmd_line = "')[1].split('"')[0]
    assert "nodelab.name=xenial-ga" in cmdline and "nodelab.key=AAAAC3NzaBLOB" in cmdline
    assert "nodelab.ip" not in cmdline and "root=/dev/vda" in cmdline   # no address: the management network's DHCP
    assert 'libvirt.driver = "kvm"' in box.vagrantfile(TARGETS["xenial-ga"], image, "kvm", key)


def test_a_box_is_added_unless_vagrant_has_that_very_box(tmp_path, monkeypatch):
    import tarfile
    made = tmp_path / "xenial-ga-abc.box"
    (tmp_path / "Vagrantfile").write_text("# xenial-ga-abc.box\n")
    with tarfile.open(made, "w") as tar:
        tar.add(tmp_path / "Vagrantfile", arcname="Vagrantfile")
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "vagrant.d"))
    calls = []
    monkeypatch.setattr(box.shell, "run", lambda argv, **kw: calls.append(argv))
    monkeypatch.setattr(box, "_drop_unused_volumes", lambda target: None)
    monkeypatch.setattr(box, "_drop_unused_kernels", lambda target: None)
    assert box.add(made, "xenial-ga") == "nodelab/xenial-ga"
    assert calls == [["vagrant", "box", "add", "--force", "--name", "nodelab/xenial-ga", str(made)]]
    installed = box.installed("xenial-ga")
    assert installed == tmp_path / "vagrant.d/boxes/nodelab-VAGRANTSLASH-xenial-ga/0/libvirt"
    installed.mkdir(parents=True)
    (installed / "Vagrantfile").write_text("# xenial-ga-abc.box\n")
    box.add(made, "xenial-ga")
    assert len(calls) == 1


@pytest.fixture
def workshop(tmp_path, monkeypatch):
    monkeypatch.setenv("VAGRANT_CWD", str(tmp_path))
    answers = {"domstate": "running", "domifaddr": " vnet0  52:54:00:dd:55:57  ipv4  192.168.121.80/24",
               "dumpxml": DOMAIN_XML}
    monkeypatch.setattr(vagrant.box, "virsh", lambda *args, check=True: subprocess.CompletedProcess(
        args, 0, answers[args[0]], ""))
    return tmp_path, answers


def _machine(where: Path, box_name: str = "nodelab/xenial-ga") -> None:
    data = where / ".vagrant/machines/xenial-ga/libvirt"
    data.mkdir(parents=True)
    (data / "id").write_text("fad42232-437b")
    (data / "box_meta").write_text('{"name":"%s","version":"0","provider":"libvirt"}' % box_name)


def test_a_running_workshop_machine_is_found_with_its_address_and_console(workshop):
    where, _ = workshop
    (where / "Vagrantfile").write_text("")
    _machine(where)
    assert vagrant.workshop_machine("xenial-ga") == {
        "machine": "xenial-ga", "workdir": str(where), "domain": "fad42232-437b", "address": "192.168.121.80",
        "console": "/work/.vagrant/nodelab-xenial-ga-console.txt", "accel": "tcg", "memory_mib": 2048, "cpus": 2}


def test_what_is_missing_for_a_workshop_machine_is_said_with_what_to_do(workshop):
    where, answers = workshop
    with pytest.raises(LabError, match="no Vagrantfile in .*set VAGRANT_CWD"):
        vagrant.workshop_machine("xenial-ga")
    (where / "Vagrantfile").write_text("")
    with pytest.raises(LabError, match=r"no workshop machine xenial-ga in .*`vagrant up xenial-ga` in"):
        vagrant.workshop_machine("xenial-ga")
    _machine(where, "ubuntu/xenial64")
    with pytest.raises(LabError, match="is not made from the box nodelab/xenial-ga"):
        vagrant.workshop_machine("xenial-ga")
    (where / ".vagrant/machines/xenial-ga/libvirt/box_meta").write_text('{"name":"nodelab/xenial-ga"}')
    answers["domstate"] = "shut off"
    with pytest.raises(LabError, match="is not running: `vagrant up xenial-ga`"):
        vagrant.workshop_machine("xenial-ga")
    answers["domstate"] = "running"
    answers["dumpxml"] = "<domain><devices/></domain>"
    with pytest.raises(LabError, match="has no serial console in a file"):
        vagrant.workshop_machine("xenial-ga")


def test_a_run_that_boots_its_node_with_kernel_arguments_is_refused_on_a_workshop_machine(tmp_path):
    from lab.owned.state import LabState
    backend = backend_class("vagrant")(LabState(tmp_path))
    with pytest.raises(LabError, match="boots with its box's command line: use --backend qemu"):
        backend.start_node("n-1", TARGETS["xenial-ga"], "nodelab/xenial-ga", Path("/kube"), ("possible_cpus=64",))
    assert backend.capabilities.own_kernel and backend.name == "vagrant"


def test_a_package_that_brings_no_command_is_present_when_a_file_matches_its_pattern(tmp_path):
    (tmp_path / "vagrant-libvirt-0.11.2").mkdir()
    assert host.missing_commands({str(tmp_path / "vagrant-libvirt-*"): "vagrant-libvirt"}).get(
        str(tmp_path / "vagrant-libvirt-*")) is None
    assert host.missing_commands({str(tmp_path / "vagrant-foo-*"): "vagrant-foo"})[
        str(tmp_path / "vagrant-foo-*")] == "vagrant-foo"


def test_earlier_volumes_of_a_box_go_unless_a_machine_is_still_backed_by_one(tmp_path, monkeypatch):
    prefix = "nodelab-VAGRANTSLASH-xenial-ga_vagrant_box_image_0_"
    volumes = [tmp_path / f"{prefix}{t}_box.img" for t in (1796458000, 1796458919, 1796459264)]
    machine_disk = tmp_path / "main_xenial-ga.img"
    for path in (*volumes, machine_disk):
        path.write_text("")
    monkeypatch.setattr(box, "LIBVIRT_IMAGES", tmp_path)
    deleted = []

    def run(argv, check=True, **kw):
        if argv[-2:] == ["vol-list", "default"]:
            out = "\n".join(f" {p.name}   {p}" for p in (*volumes, machine_disk))
        elif argv[0] == "qemu-img":
            out = f'{{"backing-filename": "{volumes[0]}"}}' if argv[-1] == str(machine_disk) else "{}"
        else:
            deleted.append(argv[-1])
            out = ""
        return subprocess.CompletedProcess(argv, 0, out, "")
    monkeypatch.setattr(box.shell, "run", run)
    monkeypatch.setattr(box, "virsh", lambda *args, check=True: run(["virsh", "-c", box.LIBVIRT, *args], check))
    box._drop_unused_volumes("xenial-ga")
    assert deleted == [str(volumes[1])]   # the oldest backs a machine, the newest is the box now
