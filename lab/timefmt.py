"""Times and durations as Go programs print them (docker, kubelet, registry)."""

import datetime
import re

_UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


def rfc3339(stamp: str) -> float:
    """A UTC RFC 3339 stamp with up to nanoseconds ("...T00:50:01.123456789Z") as epoch seconds."""
    whole, _, fraction = stamp.strip().rstrip("Z").partition(".")
    seconds = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp()
    return seconds + float(f"0.{fraction or 0}")


def go_duration(text: str) -> float:
    """A Go duration ("143.5ms", "1.2s", "1m2.5s") in seconds."""
    parts = re.findall(r"([0-9.]+)(h|ms|µs|us|ns|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)
