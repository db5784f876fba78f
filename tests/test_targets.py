import re

import pytest

from lab.recipes import targets
from lab.errors import LabError


def pins(target):
    return dict(p.split("=", 1) for p in target.packages if "=" in p)


def test_primary_targets_are_one_affected_one_fixed():
    assert targets.PRIMARY == ("xenial-ga", "bookworm")
    assert pins(targets.get("xenial-ga"))["systemd"] == "229-4ubuntu4"


def test_xenial_targets_differ_only_in_systemd():
    ga, upd = pins(targets.get("xenial-ga")), pins(targets.get("xenial"))
    assert upd["systemd"] == "229-4ubuntu21.31"
    assert {k: v for k, v in ga.items() if v != "229-4ubuntu4"} == \
        {k: v for k, v in upd.items() if v != "229-4ubuntu21.31"}
    # every systemd binary package is pinned to the same version and held
    for name in ("systemd", "libsystemd0", "systemd-sysv", "udev", "libudev1", "systemd-dbg"):
        assert ga[name] == "229-4ubuntu4" and name in targets.get("xenial-ga").hold


def test_seed_era_runtime_pins():
    p = pins(targets.get("xenial-ga"))
    assert p["docker.io"].startswith("18.09.7") and p["containerd"].startswith("1.2.6")
    assert p["runc"].startswith("1.0.0~rc7")


def test_recipe_key_follows_inputs():
    t = targets.get("xenial-ga")
    assert t.recipe_key("script") == t.recipe_key("script")
    assert t.recipe_key("script") != t.recipe_key("other script")
    assert t.recipe_key("script") != targets.get("xenial").recipe_key("script")
    assert t.rootfs_key() == targets.get("xenial").rootfs_key()   # same suite, shared base


def test_sources_list_names_every_pocket():
    text = targets.get("xenial").sources_list("http://mirror.example/ubuntu")
    assert text.splitlines() == ["deb http://mirror.example/ubuntu xenial main universe",
                                 "deb http://mirror.example/ubuntu xenial-updates main universe"]


def test_unknown_target_is_a_clear_error():
    with pytest.raises(LabError, match="unknown target 'nope'; known: xenial-ga, xenial, bookworm, centos7"):
        targets.get("nope")


def test_centos7_exists_but_is_unavailable_with_reason():
    with pytest.raises(LabError, match="centos7 is unavailable here: no CentOS 7 package source"):
        targets.runnable("centos7")


def test_candidate_moves_sibling_packages_together():
    cand = targets.candidate("xenial-ga", {"systemd": "229-4ubuntu21.31"})
    p = pins(cand)
    for name in ("systemd", "libsystemd0", "systemd-sysv", "udev", "libudev1", "systemd-dbg"):
        assert p[name] == "229-4ubuntu21.31"
    assert p["docker.io"] == pins(targets.get("xenial-ga"))["docker.io"]
    assert cand.recipe_key("s") != targets.get("xenial-ga").recipe_key("s")
    # It names an image tag, containers and a Kubernetes node (DNS-1123 label).
    assert cand.name.startswith("xenial-ga-candidate-")
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", cand.name) and len(cand.name) <= 40


def test_candidate_rejects_unknown_package_and_unavailable_base():
    with pytest.raises(LabError, match="has no package 'nope'"):
        targets.candidate("xenial-ga", {"nope": "1"})
    with pytest.raises(LabError, match="unavailable"):
        targets.candidate("centos7", {"systemd": "219-62.8"})
