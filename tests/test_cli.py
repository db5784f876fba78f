"""The CLI's answers to bad input: one clear line, non-zero exit, no traceback."""

import pytest

from lab.cli import main


@pytest.mark.parametrize("argv, message", [
    (["up", "--target", "nope"], "unknown target 'nope'"),
    (["up", "--target", "centos7"], "target centos7 is unavailable here: no CentOS 7 package source"),
    (["up", "--nodes", "0"], "--nodes must be at least 1"),
    (["images", "build"], "images build needs a TARGET"),
    (["run", "nope", "--scenarios-dir", "scenarios"], "unknown scenario 'nope'; known: apiqps, cookie, memcg, memstall, mountunits, pulls, zombies"),
    (["run", "cookie", "--target", "nope", "--scenarios-dir", "scenarios"], "unknown target 'nope'"),
    (["run", "cookie", "--scenarios-dir", "/nonexistent"], "no scenarios directory at /nonexistent"),
    (["gate", "--base", "xenial-ga", "--set", "systemd"], "--set takes PKG=VERSION"),
    (["gate", "--base", "xenial-ga", "--set", "nope=1"], "has no package 'nope'"),
    (["gate", "--base", "centos7", "--set", "systemd=1"], "target centos7 is unavailable here"),
])
def test_bad_input_is_one_clear_error(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parent.parent)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err.replace("\n", " ")
    assert "Traceback" not in err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


@pytest.mark.parametrize("argv, message", [
    (["run", "cookie", "--param", "cokie=1"], "scenario cookie has no parameter 'cokie'; its parameters: cookie, flap_seconds, kubelet_flags"),
    (["run", "cookie", "--param", "cookie=0xzz"], "--param cookie=0xzz: cookie is a whole number (decimal or 0x-hex) in cookie"),
    (["run", "cookie", "--param", "cookie=-1"], "--param cookie=-1: must be at least 0xffffffbf and at most 0xffffffffffffffff"),
    (["run", "cookie", "--param", "cookie=0"], "--param cookie=0: must be at least 0xffffffbf"),
    (["run", "cookie", "--param", "cookie=0x10000000000000000"], "must be at least 0xffffffbf and at most 0xffffffffffffffff"),
    (["run", "cookie", "--repeat", "0"], "--repeat must be at least 1"),
    (["run", "cookie", "--param", "cookie"], "--param takes KEY=VALUE, not 'cookie'"),
    (["run", "zombies", "--param", "pid1=bash"], "--param pid1=bash: one of supercronic, tini"),
    (["run", "zombies", "--param", "supercronic=/nonexistent"], "--param supercronic=/nonexistent: no such file"),
    (["run", "mountunits", "--param", "cycles=many"], "--param cycles=many: cycles is a whole number (decimal or 0x-hex) in mountunits"),
    (["run", "apiqps", "--variant", "fast"], "scenario apiqps has no variant 'fast'; known: default, raised"),
    (["run", "memstall", "--variant", "earlyoom", "--target", "xenial-ga"],
     "scenario memstall (earlyoom) cannot run on xenial-ga: earlyoom is not in ubuntu xenial's archive"),
    (["run", "memstall", "--param", "oom_daemon=systemd-oomd"], "--param oom_daemon=systemd-oomd: one of none, earlyoom"),
    (["break", "nope"], "unknown scenario 'nope'"),
    (["break", "cookie", "--target", "nope"], "unknown target 'nope'"),
    (["break", "cookie", "--variant", "nope"], "scenario cookie has no variant 'nope'"),
    (["break", "cookie", "--param", "cokie=1"], "scenario cookie has no parameter 'cokie'"),
    (["check"], "no exercise is under way; `nodelab break SCENARIO` starts one"),
    (["hint"], "no exercise is under way"),
])
def test_a_bad_parameter_is_one_line_and_no_node_starts(argv, message, capsys, monkeypatch):
    def no_lab(*args, **kwargs):
        raise AssertionError("the lab was touched for a bad parameter")
    monkeypatch.setattr("lab.cli.Lab", no_lab)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err.replace("\n", " ") and "Traceback" not in err


def test_a_good_hex_parameter_parses():
    from lab.scenario import catalog
    from lab.scenario.params import check
    assert check(catalog.get("cookie"), {"cookie": "0xffffffc0"}) == {"cookie": 0xFFFFFFC0}


def test_scenarios_lists_each_scenarios_parameters(capsys):
    assert main(["scenarios", "cookie"]) == 0
    out = capsys.readouterr().out
    assert "primary runs: xenial-ga, bookworm" in out and "cookie (number, default 4294967280, 4294967231..18446744073709551615)" in out
