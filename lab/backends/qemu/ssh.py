"""A VM node reached over SSH with paramiko.

The lab's key pair (ed25519, made with ssh-keygen, one per lab, never a
password) is given to each VM on its kernel command line; the VM's host key
is read from its serial console before the first connection and checked on
every connection after (RejectPolicy: an unknown key is refused). Commands
run under the node's own `timeout` (lab.backends.node.Node.run), so nothing
outlives its deadline in the VM; files go over SFTP.
"""

import io
import shlex
import socket
import subprocess
import threading
import time
from pathlib import Path

import paramiko

from lab.backends.node import Node, Result
from lab.errors import LabError


def lab_key(directory: Path) -> Path:
    """The lab's private key (made on first use); its .pub beside it."""
    key = directory / "id_ed25519"
    if not key.exists():
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nodelab", "-f", str(key)],
                       check=True, capture_output=True)
    return key


def public_blob(key: Path) -> str:
    """The base64 part of the public key (what the VM's command line carries)."""
    return Path(f"{key}.pub").read_text().split()[1]


class SSHNode(Node):
    backend = "qemu"

    def __init__(self, name: str, address: str, key: Path, host_key: str, known_hosts: Path,
                 target: str = "", details: dict | None = None, port: int = 22):
        self.name, self.address, self.key, self.target, self.port = name, address, key, target, port
        self.host_key, self.known_hosts = host_key, known_hosts   # "ssh-ed25519 AAAA..."
        self.details = details or {}
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    def client(self) -> paramiko.SSHClient:
        with self._lock:
            transport = self._client.get_transport() if self._client else None
            if transport is None or not transport.is_active():
                self._client = self._connect()
            return self._client

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        try:
            kind, blob = self.host_key.split()[:2]
            key = paramiko.Ed25519Key(data=_b64(blob))
        except ValueError as exc:   # binascii.Error is one
            raise LabError(f"VM node {self.name}: no usable host key recorded ({exc})") from None
        known_as = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        client.get_host_keys().add(known_as, kind, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(self.address, port=self.port, username="root", key_filename=str(self.key), look_for_keys=False,
                           allow_agent=False, timeout=15, banner_timeout=60, auth_timeout=60)
        except (OSError, paramiko.SSHException) as exc:
            raise LabError(f"cannot reach VM node {self.name} over SSH at {self.address}: {exc}") from None
        client.get_transport().set_keepalive(15)
        return client

    def _exec(self, argv, timeout, stdin):
        deadline = time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        chan = None
        try:
            chan = self.client().get_transport().open_session(timeout=30)
            # The node's `timeout` ends the command; this bounds what is left: a VM that stops answering.
            chan.settimeout(max(1.0, deadline - time.monotonic()))
            chan.exec_command(shlex.join(argv))
            if stdin is not None:
                chan.sendall(stdin)   # the VM takes it at its own pace (a `docker load` under TCG)
                chan.shutdown_write()
            chan.settimeout(0.2)
            while True:   # until end of output: exit-status can come before the last data (OpenSSH)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                try:
                    data = chan.recv(65536)
                except socket.timeout:
                    data = None
                if data == b"":
                    break
                if data:
                    out += data
                if time.monotonic() > deadline:
                    return Result(124, out.decode(errors="replace"), err.decode(errors="replace"), timed_out=True)
            while not chan.exit_status_ready():
                if time.monotonic() > deadline:
                    return Result(124, out.decode(errors="replace"), err.decode(errors="replace"), timed_out=True)
                chan.status_event.wait(0.2)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            return Result(chan.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace"))
        except socket.timeout:
            return Result(124, out.decode(errors="replace"), err.decode(errors="replace") + "ssh: no answer",
                          timed_out=True)
        except (LabError, paramiko.SSHException, EOFError, OSError, AttributeError) as exc:
            # Like ssh(1): exit 255 when the connection fails (AttributeError: a transport closed meanwhile).
            return Result(255, out.decode(errors="replace"), err.decode(errors="replace") + f"ssh: {exc}")
        finally:
            if chan is not None:
                chan.close()

    def interactive_argv(self, argv):
        return ["ssh", *self.ssh_options(), f"root@{self.address}", "--", shlex.join(argv)]

    def login_argv(self):
        return ["ssh", "-t", *self.ssh_options(), f"root@{self.address}"]

    def ssh_options(self) -> list[str]:
        """OpenSSH client options that reach this node with the lab's key and its checked host key."""
        return ["-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]

    def put_file(self, path, content, mode=0o644):
        data = content.encode() if isinstance(content, str) else content
        self.run(["mkdir", "-p", path.rsplit("/", 1)[0] or "/"])
        with self.client().open_sftp() as sftp:
            sftp.get_channel().settimeout(300)
            sftp.putfo(io.BytesIO(data), path)
            sftp.chmod(path, mode)

    def get_file(self, path):
        buf = io.BytesIO()
        with self.client().open_sftp() as sftp:
            sftp.get_channel().settimeout(300)
            sftp.getfo(path, buf)
        return buf.getvalue()

    def testinfra_host(self):
        """testinfra's paramiko backend, on this node's checked connection."""
        import testinfra
        host = testinfra.get_host(f"paramiko://root@{self.address}", ssh_identity_file=str(self.key))
        host.backend.__dict__["client"] = self.client()   # its cached_property: never its own unchecked connection
        return host

    def close(self) -> None:
        with self._lock:
            if self._client:
                self._client.close()
                self._client = None


def _b64(blob: str) -> bytes:
    import base64
    return base64.b64decode(blob, validate=True)
