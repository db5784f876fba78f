"""One run at a time per lab.

Two runs on the same lab (the same state dir) share one docker engine, one
API server and the machine's cores: the second run's pods collide with the
first's, its teardown removes what the first still uses, and each measures
the other's load. So whatever changes the lab (a pytest session, `nodelab
setup|up|down|run|gate|images build`) holds it for as long as it runs, and a
second one waits, saying who holds it. The lock is flock(2) on a file in the
state dir: the kernel drops it with the holder's process, also when that
process is killed, so a crashed run never leaves the lab locked. Within one
process the lab is held once, however many Lab objects use it (flock would
otherwise make a second one wait for the first forever).
"""

import fcntl
import json
import os
import sys
import time
from pathlib import Path

LOCK_FILE = "lab.lock"
_HELD: dict[Path, list] = {}   # lock path -> [open file, users] in this process


class LabLock:
    def __init__(self, root: Path, say=print, poll: float = 2.0, say_every: float = 60.0):
        self.path = root / LOCK_FILE
        self.say = say
        self.poll = poll
        self.say_every = say_every
        self._holding = False

    @property
    def held(self) -> bool:
        return self._holding

    def acquire(self) -> None:
        """Hold the lab; wait (saying who holds it) while another process does.
        Idempotent for this object; shared with other objects of this process."""
        if self._holding:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        if key in _HELD:
            _HELD[key][1] += 1
            self._holding = True
            return
        file = open(self.path, "a+")   # never truncated before we hold it: the holder's note stays readable
        started = time.monotonic()
        said_at = None
        try:
            while True:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    now = time.monotonic()
                    if said_at is None or now - said_at >= self.say_every:
                        self.say(f"waiting for the lab at {self.path.parent}: {holder(self.path)} "
                                 f"(waited {now - started:.0f} s so far)")
                        said_at = now
                    time.sleep(self.poll)
        except BaseException:
            file.close()
            raise
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv),
                               "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        file.flush()
        _HELD[key] = [file, 1]
        self._holding = True
        if said_at is not None:
            self.say(f"the lab is ours after waiting {time.monotonic() - started:.0f} s")

    def release(self) -> None:
        if not self._holding:
            return
        self._holding = False
        key = self.path.resolve()
        entry = _HELD[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[key]
            entry[0].close()   # closing the only descriptor drops the flock


def holder(path: Path) -> str:
    """Who holds the lab, from the note its holder wrote."""
    try:
        note = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        note = {}
    if not note:
        return "held by another process"
    return f"held by pid {note.get('pid')} ({note.get('command', '?')}) since {note.get('since', '?')}"
