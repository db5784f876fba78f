import pytest

from lab.backends.node import CommandFailed, Node, Result


class ScriptedNode(Node):
    """A Node whose exec answers from a table: tests the interface's own logic."""
    name, backend = "scripted", "test"

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def _exec(self, argv, timeout, stdin):
        self.calls.append((argv, timeout))
        return self.answers.get(argv[4] if len(argv) > 4 else "", Result(0, "", ""))

    def interactive_argv(self, argv):
        return argv

    def put_file(self, path, content, mode=0o644):
        raise NotImplementedError

    def get_file(self, path):
        raise NotImplementedError

    def testinfra_host(self):
        return None


def test_run_bounds_the_command_inside_the_node():
    node = ScriptedNode({})
    node.run("echo hi", timeout=7)
    argv, host_timeout = node.calls[0]
    assert argv[:5] == ["timeout", "-k", "5", "7", "/bin/sh"] and host_timeout > 7


def test_failures_and_timeouts_raise_with_the_command():
    node = ScriptedNode({"/bin/sh": Result(1, "", "boom")})
    with pytest.raises(CommandFailed, match="`false` exit 1: boom"):
        node.run("false")
    node = ScriptedNode({"/bin/sh": Result(124, "", "")})
    res = node.run("sleep 99", check=False)
    assert res.timed_out and not res.ok


def test_package_versions_reads_dpkg_and_ignores_removed():
    out = "systemd=229-4ubuntu4 ii \ngdb=7.11-0ubuntu1 rc \nrunc=1.0.0~rc7 hi \n"
    node = ScriptedNode({"dpkg-query": Result(0, out, "")})
    assert node.package_versions(["systemd", "gdb", "runc", "docker.io"]) == {
        "systemd": "229-4ubuntu4", "gdb": None, "runc": "1.0.0~rc7", "docker.io": None}
