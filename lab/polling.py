"""Waiting for a condition with a deadline, the one way scenarios poll."""

import time


def until(condition, seconds: float, every: float = 1) -> bool:
    """Poll `condition` until it is true or `seconds` pass; its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())
