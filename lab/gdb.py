"""gdb inside a node, driven over MI by pygdbmi.

Attaching stops the target; every path out of `Gdb` (normal exit, error,
timeout, Ctrl-C) deletes breakpoints and detaches, so the target never stays
stopped. Everything gdb printed is kept as evidence in `transcript`.
"""

import time

from pygdbmi.gdbcontroller import GdbController

from lab.errors import LabError
from lab.nodes.base import Node


class GdbError(LabError):
    pass


class Gdb:
    def __init__(self, node: Node, pid: int, command_timeout: float = 20):
        self.node = node
        self.pid = pid
        self.timeout = command_timeout
        self.transcript: list[str] = []
        self.ctl: GdbController | None = None
        self.attached = False
        self._stops: list[dict] = []   # "stopped" records not yet consumed
        self._running = False

    def __enter__(self):
        argv = self.node.interactive_argv(["gdb", "--nx", "--quiet", "--interpreter=mi2"])
        self.ctl = GdbController(command=argv, time_to_check_for_additional_output_sec=0.05)
        self.mi("-gdb-set pagination off")
        self.mi("-gdb-set confirm off")
        self.mi(f"-target-attach {self.pid}", timeout=60)
        self.attached = True
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self) -> None:
        """Delete breakpoints and detach: the target runs on whatever happened."""
        if self.ctl is None:
            return
        try:
            if self.attached:
                self.interrupt_if_running()
                self.mi("-break-delete", check=False)
                self.mi("-target-detach", check=False)
                self.attached = False
        finally:
            try:
                self.ctl.exit()
            except Exception:  # noqa: BLE001 - the process may already be gone
                pass
            self.ctl = None

    # -- MI ---------------------------------------------------------------------
    def _log(self, responses: list[dict]) -> None:
        for r in responses:
            if r.get("type") in ("console", "log", "target") and r.get("payload"):
                self.transcript.append(str(r["payload"]).rstrip("\n"))
            elif r.get("type") in ("result", "notify"):
                self.transcript.append(f"^{r.get('message')} {r.get('payload') or ''}".rstrip())

    def mi(self, command: str, timeout: float | None = None, check: bool = True) -> dict:
        """Send one MI command; return its result record's payload."""
        assert self.ctl is not None
        self.transcript.append(f"(gdb) {command}")
        responses = self.ctl.write(command, timeout_sec=timeout or self.timeout, raise_error_on_timeout=False)
        deadline = time.monotonic() + (timeout or self.timeout)
        while not any(r.get("type") == "result" for r in responses) and time.monotonic() < deadline:
            responses += self.ctl.get_gdb_response(timeout_sec=1, raise_error_on_timeout=False)
        self._log(responses)
        self._stops.extend(r for r in responses if r.get("type") == "notify" and r.get("message") == "stopped")
        result = next((r for r in responses if r.get("type") == "result"), None)
        if result is None:
            if check:
                raise GdbError(f"gdb gave no answer to {command!r} within {timeout or self.timeout:.0f} s")
            return {}
        if result.get("message") == "error" and check:
            raise GdbError(f"gdb: {command}: {(result.get('payload') or {}).get('msg')}")
        return result.get("payload") or {}

    def value(self, expression: str) -> str:
        return str(self.mi(f'-data-evaluate-expression "{expression}"').get("value", ""))

    def try_value(self, expression: str) -> str | None:
        try:
            return self.value(expression)
        except GdbError:
            return None

    def wait_stop(self, timeout: float) -> dict | None:
        """Wait for the target to stop (a breakpoint hit); None on timeout."""
        assert self.ctl is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._stops:
                self._running = False
                return self._stops.pop(0)
            responses = self.ctl.get_gdb_response(timeout_sec=0.5, raise_error_on_timeout=False)
            self._log(responses)
            self._stops.extend(r for r in responses if r.get("type") == "notify" and r.get("message") == "stopped")
        return None

    def cont(self) -> None:
        self.mi("-exec-continue")
        self._running = True

    def interrupt_if_running(self) -> None:
        if self._running:
            self.mi("-exec-interrupt", check=False)
            self.wait_stop(10)
            self._running = False
