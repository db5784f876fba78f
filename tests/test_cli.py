"""The CLI's answers to bad input: one clear line, non-zero exit, no traceback."""

import pytest

from lab.cli import main


@pytest.mark.parametrize("argv, message", [
    (["up", "--target", "nope"], "unknown target 'nope'"),
    (["up", "--target", "centos7"], "target centos7 is unavailable here: no CentOS 7 package source"),
    (["up", "--nodes", "0"], "--nodes must be at least 1"),
    (["images", "build"], "images build needs a TARGET"),
    (["run", "nope", "--scenarios-dir", "scenarios"], "unknown scenario 'nope'; known: apiqps, cookie, mountunits, pulls, zombies"),
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
