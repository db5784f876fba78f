"""gdb inside a node, as one bounded unit that cannot leave its target stopped.

Each use is one `gdb --batch -p PID` run *in the node*: attach, a few
commands, detach, exit. Nothing on the lab's side keeps it going, so a
controller killed at any moment (SIGKILL included) cannot leave the target
stopped or holding a breakpoint: the lab never inserts breakpoints, gdb ends
its batch and detaches by itself, an in-node `timeout` ends it with SIGTERM
(on which gdb detaches) if it hangs, and the unit sends the target SIGCONT
afterwards in case gdb died between the attach's stop and the detach.
gdb's output is written to a file in the node first, so a lost pipe to the
lab (the controller gone) cannot kill gdb with SIGPIPE mid-session.

gdb runs with the MI interpreter and its records are parsed by pygdbmi; each
command's output is kept apart (an `echo` marker before it) and the whole
exchange is kept as the transcript for the report.
"""

import re
import secrets
from dataclasses import dataclass, field

from pygdbmi import gdbmiparser

from lab.errors import LabError
from lab.backends.node import Node

MARK = "@@nodelab-gdb-command-"
# $1: target pid, $2: seconds gdb may take, $3: output file; the rest: gdb's arguments.
UNIT = r"""
pid=$1 limit=$2 out=$3; shift 3
timeout -s TERM -k 5 "$limit" gdb --nx --batch --interpreter=mi2 -p "$pid" "$@" >"$out" 2>&1
rc=$?
kill -CONT "$pid" 2>/dev/null
cat "$out"; rm -f "$out"
exit $rc
"""


class GdbError(LabError):
    pass


@dataclass
class Batch:
    commands: list[str]
    outputs: list[str] = field(default_factory=list)   # what each command printed (console and errors)
    transcript: str = ""
    rc: int = 0

    def value(self, index: int) -> str | None:
        """The `$N = value` a print command gave, or None (it printed an error)."""
        m = re.search(r"^\$\d+ = (.*)$", self.outputs[index], re.M)
        return m.group(1).strip() if m else None

    def number(self, index: int) -> int | None:
        text = self.value(index)
        m = re.search(r"(0x[0-9a-fA-F]+|\d+)", text or "")
        return int(m.group(1), 0) if m else None


def batch(node: Node, pid: int, commands: list[str], seconds: int = 60) -> Batch:
    """Attach gdb to `pid` in the node, run `commands` (gdb CLI), detach."""
    args = []
    for i, command in enumerate(commands):
        args += ["-ex", f"echo {MARK}{i}\\n", "-ex", command]
    out = f"/tmp/nodelab-gdb-{secrets.token_hex(4)}.out"
    res = node.run(["sh", "-c", UNIT, "nodelab-gdb", str(pid), str(seconds), out, *args],
                   timeout=seconds + 20, check=False)
    result = Batch(commands, [""] * len(commands), rc=res.rc)
    lines, current = [], None
    for raw in res.stdout.splitlines():
        record = gdbmiparser.parse_response(raw)
        kind, payload = record.get("type"), record.get("payload")
        if kind in ("console", "log", "target") and isinstance(payload, str):
            text = payload.rstrip("\n")
            if text.startswith(MARK):
                current = int(text[len(MARK):])
                lines.append(f"(gdb) {commands[current]}")
                continue
            lines.append(text)
            if current is not None:
                result.outputs[current] += text + "\n"
        elif kind in ("result", "notify") and not str(record.get("message")).startswith(("library-", "thread-")):
            lines.append(f"^{record.get('message')} {payload or ''}".rstrip())
    if res.timed_out or res.rc == 124:
        lines.append(f"!! gdb did not finish within {seconds} s; the node's timeout ended it (it detaches on SIGTERM)")
    result.transcript = "\n".join(lines + ([res.stderr.strip()] if res.stderr.strip() else []))
    if current is None:
        raise GdbError(f"gdb ran none of its commands on PID {pid} (exit {res.rc}): "
                       f"{(res.stdout + res.stderr).strip()[-500:]}")
    return result
