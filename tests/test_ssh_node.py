"""SSHNode (the qemu backend's Node) against a real SSH server on loopback:
paramiko's server mode running each command with the shell, as sshd would."""

import socket
import subprocess
import threading

import paramiko
import pytest

from lab.backends.qemu.ssh import SSHNode, lab_key, public_blob
from lab.errors import LabError


class ShellServer(paramiko.ServerInterface):
    def __init__(self, allowed: paramiko.PKey):
        self.allowed = allowed

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL if username == "root" and key == self.allowed else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "publickey"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=_execute, args=(channel, command.decode()), daemon=True).start()
        return True


def _execute(channel, command):
    """Run the command, feeding it the channel's data as it comes (a process that
    reads slowly makes the client wait, as a VM's `docker load` does)."""
    proc = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    outputs = {}
    readers = [threading.Thread(target=lambda n, f: outputs.__setitem__(n, f.read()), args=(n, f))
               for n, f in (("out", proc.stdout), ("err", proc.stderr))]
    for r in readers:
        r.start()
    channel.settimeout(0.5)   # no data within 0.5 s: the client sends no stdin
    try:
        while True:
            data = channel.recv(65536)
            if not data:
                break
            channel.settimeout(None)
            proc.stdin.write(data)
    except socket.timeout:
        pass
    except BrokenPipeError:
        pass
    proc.stdin.close()
    for r in readers:
        r.join()
    proc.wait()
    channel.sendall(outputs["out"])
    channel.sendall_stderr(outputs["err"])
    channel.send_exit_status(proc.returncode)
    channel.close()


@pytest.fixture
def server(tmp_path):
    key = lab_key(tmp_path / "ssh")
    host_key = paramiko.Ed25519Key.from_private_key_file(str(lab_key(tmp_path / "host")))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    allowed = paramiko.Ed25519Key.from_private_key_file(str(key))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, paramiko.SFTPServerInterface)
            transport.start_server(server=ShellServer(allowed))

    threading.Thread(target=serve, daemon=True).start()
    yield key, f"ssh-ed25519 {public_blob(tmp_path / 'host' / 'id_ed25519')}", port
    listener.close()


def _node(key, host_key, port, tmp_path):
    return SSHNode("n1", "127.0.0.1", key, host_key, tmp_path / "known_hosts", target="xenial-ga", port=port)


def test_commands_run_with_their_output_exit_code_and_stdin(server, tmp_path):
    key, host_key, port = server
    node = _node(key, host_key, port, tmp_path)
    result = node.run("echo out; echo err >&2; exit 3", check=False)
    assert (result.rc, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert node.run(["cat"], stdin=b"given\n").stdout == "given\n"


def test_a_command_past_its_timeout_is_ended_by_the_node_itself(server, tmp_path):
    key, host_key, port = server
    node = _node(key, host_key, port, tmp_path)
    result = node.run("sleep 30", timeout=1, check=False)
    assert result.timed_out and result.rc == 124


def test_an_unknown_host_key_is_refused(server, tmp_path):
    key, _, port = server
    other = f"ssh-ed25519 {public_blob(lab_key(tmp_path / 'other'))}"
    node = _node(key, other, port, tmp_path)
    with pytest.raises(LabError, match="cannot reach VM node n1 over SSH"):
        node.client()


def test_stdin_larger_than_the_channel_window_gets_through(server, tmp_path):
    """What loading an image does (docker save | docker load): megabytes on stdin."""
    key, host_key, port = server
    data = bytes(range(256)) * 16384   # 4 MiB, far past paramiko's 2 MiB window, to a slow reader
    node = _node(key, host_key, port, tmp_path)
    assert node.run("sleep 2; wc -c", stdin=data, timeout=60).stdout.strip() == str(len(data))
