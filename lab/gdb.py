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
    def __init__(self, node: Node, pid: int, command_timeout: float = 20, max_session: float = 120,
                 provoke_stop=None):
        """provoke_stop: a callable that makes the running target hit a
        breakpoint. gdb's own interrupt must not be used on a node's PID 1:
        gdb signals the target's process group, and PID 1's group is every
        process in the node (seen: journald, dockerd, kubelet got SIGINT)."""
        self.node = node
        self.pid = pid
        self.timeout = command_timeout
        self.max_session = max_session
        self.provoke_stop = provoke_stop
        self.transcript: list[str] = []
        self.ctl: GdbController | None = None
        self.attached = False
        self._stops: list[dict] = []   # "stopped" records not yet consumed
        self._running = False
        self._token = 0
        self._last_error = ""

    def __enter__(self):
        # `timeout` in the node: gdb cannot outlive a lost host-side pipe for
        # long (its exit detaches, so the target then runs on).
        argv = self.node.interactive_argv(["timeout", "-k", "5", str(int(self.max_session)),
                                           "gdb", "--nx", "--quiet", "--interpreter=mi2"])
        self.ctl = GdbController(command=argv, time_to_check_for_additional_output_sec=0.01)
        try:
            self.mi("-gdb-set pagination off")
            self.mi("-gdb-set confirm off")
            # Async MI: gdb keeps reading commands while the target runs.
            if not self.mi("-gdb-set mi-async on", check=False) and self._last_error:
                self.mi("-gdb-set target-async on")
            self.attached = True   # from here on, release() detaches whatever happens
            self.mi(f"-target-attach {self.pid}", timeout=60)
        except BaseException:
            self.release()
            raise
        # Attaching stops the target; in async mode that stop is reported after
        # ^done. Wait for it, so that the next -exec-continue is accepted.
        deadline = time.monotonic() + 30
        while not self._stops and time.monotonic() < deadline:
            self._absorb(self.ctl.get_gdb_response(timeout_sec=0.2, raise_error_on_timeout=False))
        if not self._stops:
            self.release()
            raise GdbError(f"attaching to PID {self.pid} never stopped it")
        self._stops.clear()   # the stop that attaching causes is not a breakpoint hit
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
                if self._running:
                    try:
                        self.stop_running_target()
                    except GdbError as exc:
                        self.transcript.append(f"!! {exc}; detaching anyway")
                self.mi("-break-delete", check=False)
                self.mi("-target-detach", check=False)
                self.attached = False
        finally:
            try:
                # gdb must exit by itself: killing the host-side client of
                # `docker exec` does not end the process in the node.
                self.ctl.write("-gdb-exit", timeout_sec=2, raise_error_on_timeout=False)
            except Exception:  # noqa: BLE001 - gdb may already be gone
                pass
            try:
                self.ctl.exit()
            except Exception:  # noqa: BLE001 - the process may already be gone
                pass
            self.ctl = None

    # -- MI ---------------------------------------------------------------------
    def _absorb(self, responses: list[dict]) -> None:
        """Keep what gdb printed, and queue the target's stops for wait_stop."""
        self._log(responses)
        self._stops.extend(r for r in responses if r.get("type") == "notify" and r.get("message") == "stopped")

    def _log(self, responses: list[dict]) -> None:
        for r in responses:
            if r.get("type") in ("console", "log", "target") and r.get("payload"):
                self.transcript.append(str(r["payload"]).rstrip("\n"))
            elif r.get("type") == "notify" and str(r.get("message")).startswith(("library-", "thread-")):
                continue   # dozens of lines per attach, nothing a reader needs
            elif r.get("type") in ("result", "notify"):
                self.transcript.append(f"^{r.get('message')} {r.get('payload') or ''}".rstrip())

    def mi(self, command: str, timeout: float | None = None, check: bool = True) -> dict:
        """Send one MI command; return the payload of *its* result record
        (matched by token: gdb may still be answering an earlier command)."""
        assert self.ctl is not None
        self._token += 1
        token = self._token
        limit = timeout or self.timeout
        self.transcript.append(f"(gdb) {command}")
        responses = self.ctl.write(f"{token}{command}", timeout_sec=0.2, raise_error_on_timeout=False)
        deadline = time.monotonic() + limit

        def mine():
            return next((r for r in responses if r.get("type") == "result" and r.get("token") == token), None)

        while mine() is None and time.monotonic() < deadline:
            responses += self.ctl.get_gdb_response(timeout_sec=0.5, raise_error_on_timeout=False)
        self._absorb(responses)
        result = mine()
        if result is None:
            if check:
                raise GdbError(f"gdb gave no answer to {command!r} within {limit:.0f} s")
            return {}
        self._last_error = ""
        if result.get("message") == "error":
            self._last_error = str((result.get("payload") or {}).get("msg"))
            if check:
                raise GdbError(f"gdb: {command}: {self._last_error}")
        return result.get("payload") or {}

    def value(self, expression: str) -> str:
        return str(self.mi(f'-data-evaluate-expression "{expression}"').get("value", ""))

    def try_value(self, expression: str) -> str | None:
        try:
            return self.value(expression)
        except GdbError:
            return None

    def wait_stop(self, timeout: float) -> dict | None:
        """Wait for a breakpoint hit; None on timeout. Other stops (a signal
        for the target) are passed on at once."""
        assert self.ctl is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self._stops:
                stop = self._stops.pop(0)
                self._running = False
                if (stop.get("payload") or {}).get("reason") == "breakpoint-hit":
                    return stop
                self.cont()
            self._absorb(self.ctl.get_gdb_response(timeout_sec=0.2, raise_error_on_timeout=False))
        return None

    def pending_stop(self) -> bool:
        return bool(self._stops)

    def cont(self) -> None:
        self.mi("-exec-continue")
        self._running = True

    def stop_running_target(self) -> None:
        """Bring a running target to a breakpoint so that it can be detached."""
        if self.provoke_stop is None:
            raise GdbError("the target is running and nothing can bring it to a breakpoint")
        self.provoke_stop()
        if self.wait_stop(15) is None:
            raise GdbError("the target did not reach a breakpoint within 15 s")
