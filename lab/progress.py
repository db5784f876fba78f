"""Progress lines for long steps: elapsed time, then what is happening."""

import time

from rich.console import Console

_console = Console(stderr=True, highlight=False, soft_wrap=True)
_t0 = time.monotonic()


def say(message: str) -> None:
    _console.print(f"[dim]{time.monotonic() - _t0:6.1f}s[/dim] {message}")


def console() -> Console:
    return _console
