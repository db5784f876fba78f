"""Ctrl-C and SIGTERM during a run: the run stops, tears down, and says so.

While a scenario runs, SIGINT and SIGTERM raise `Interrupted` in the main
thread (SIGTERM would otherwise kill the controller without its teardown).
A second signal while the teardown runs is noted and ignored, so the node,
its pods and its namespace are still removed; SIGKILL cannot be caught, and
`nodelab down` removes what such a run left.
"""

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    def __init__(self, signame: str, report_file: str | None = None):
        super().__init__(signame)
        self.signame = signame
        self.report_file = report_file


class Signals:
    """Which signal stopped the run, if any (also seen by code that only got
    an error from a child the same Ctrl-C killed)."""

    def __init__(self):
        self.received: str | None = None
        self.tearing_down = False

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is not None and self.tearing_down:
            return   # the teardown goes on
        self.received = self.received or name
        if not self.tearing_down:
            raise Interrupted(name)


@contextlib.contextmanager
def catching_signals():
    signals = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    previous = {s: signal.signal(s, signals._handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
