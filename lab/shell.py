"""Running host commands with a timeout and an error a user can read."""

import subprocess
from collections.abc import Sequence

from lab.errors import LabError


def run(argv: Sequence[str], *, timeout: float = 600, check: bool = True,
        input: str | None = None, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              input=input, env=env, cwd=cwd)
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]}: not installed ({exc.strerror})") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)}: no answer within {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed (exit {proc.returncode}): {tail(proc.stderr or proc.stdout)}")
    return proc


def tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
