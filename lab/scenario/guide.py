"""A scenario's workshop guide: the markdown a participant follows on a broken node.

A guide (`scenarios/guides/<scenario>.md`, shipped with the scenarios) is
plain markdown with a few conventions, so that the lab can check it against
a node that is really broken and a guide never rots:

- `# Title`, then the story in a paragraph or two;
- one `## ` section per step; its commands are fenced code blocks whose info
  string says where they run, ```` ```sh node ```` (a shell on the node) or
  ```` ```sh host ```` (the lab host, with `KUBECONFIG`, `NODE` and
  `NAMESPACE` set to the exercise's); a line `expect: `a`, `b`` right after
  a block names text its output must contain;
- `## Repair`: the commands that repair the node (never run by the check of
  the guide: the scenario's own repair does that in a run);
- `## Hints`: a list, one item per hint, revealed one at a time by
  `nodelab hint`.
"""

import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```sh (node|host)\s*$")
EXPECT = re.compile(r"`([^`]+)`")
COMMAND_TIMEOUT_S = 90


@dataclass(frozen=True)
class Command:
    where: str                  # "node" or "host"
    script: str
    expect: tuple[str, ...] = ()


@dataclass
class Step:
    title: str
    text: str
    commands: list[Command] = field(default_factory=list)


@dataclass
class Guide:
    path: Path
    title: str
    story: str
    steps: list[Step]
    repair: list[Command]
    hints: list[str]


def guide_file(scenario_module_file: str, name: str) -> Path:
    """Where a scenario's guide lives: `guides/<name>.md` beside its module."""
    return Path(scenario_module_file).parent / "guides" / f"{name}.md"


def parse(path: Path) -> Guide:
    title, story, sections = "", [], []   # sections: [title, text lines, commands]
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## "):
            sections.append([line[3:].strip(), [], []])
        elif line.startswith("expect:"):
            raise ValueError(f"{path}:{i + 1}: an expect: line belongs right after a ```sh block's closing fence")
        elif (m := FENCE.match(line)):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ValueError(f"{path}:{i + 1}: a ```sh {m.group(1)} block is never closed")
            if not sections:
                raise ValueError(f"{path}:{i + 1}: a command before the first step (## heading)")
            expect: tuple[str, ...] = ()
            after = end + 1
            if after < len(lines) and lines[after].startswith("expect:"):
                expect = tuple(EXPECT.findall(lines[after]))
                if not expect:
                    raise ValueError(f"{path}:{after + 1}: expect: names no `text`")
                after += 1
            sections[-1][2].append(Command(m.group(1), "\n".join(lines[i + 1:end]), expect))
            sections[-1][1].extend(lines[i:after])
            i = after
            continue
        elif sections:
            sections[-1][1].append(line)
        elif title:
            story.append(line)
        i += 1
    steps, repair, hints = [], [], []
    for name, text, commands in sections:
        if name.lower() == "repair":
            repair = commands
        elif name.lower() == "hints":
            hints = _list_items(text)
        else:
            steps.append(Step(name, "\n".join(text).strip(), commands))
    if not title or not steps or not repair:
        raise ValueError(f"{path}: a guide needs a # title, at least one step and a ## Repair section")
    return Guide(path, title, "\n".join(story).strip(), steps, repair, hints)


def _list_items(text: list[str]) -> list[str]:
    items: list[str] = []
    for line in text:
        m = re.match(r"^(?:-|\d+\.)\s+(.*)", line)
        if m:
            items.append(m.group(1).strip())
        elif items and line.strip():
            items[-1] += " " + line.strip()
    return items


@dataclass
class Checked:
    step: str
    where: str
    script: str
    expect: tuple[str, ...]
    ok: bool
    missing: list[str]
    output: str
    seconds: float


def check(guide: Guide, node, env: dict[str, str]) -> list[Checked]:
    """Run every step's commands (not the repair) where the guide says, and
    check that each output contains what the guide says it will show."""
    out = []
    for step in guide.steps:
        for command in step.commands:
            t0 = time.monotonic()
            if command.where == "node":
                res = node.run(["sh", "-c", command.script], timeout=COMMAND_TIMEOUT_S, check=False)
                output = (res.stdout + res.stderr) if not res.timed_out else \
                    f"{res.stdout}{res.stderr}\n(timed out after {COMMAND_TIMEOUT_S} s)"
            else:
                output = _on_host(command.script, env)
            missing = [e for e in command.expect if e not in output]
            out.append(Checked(step.title, command.where, command.script, command.expect, not missing, missing,
                               output[-4000:], round(time.monotonic() - t0, 1)))
    return out


def _on_host(script: str, env: dict[str, str]) -> str:
    try:
        res = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                             env={**os.environ, **env})
    except subprocess.TimeoutExpired as exc:
        return f"{exc.stdout or ''}{exc.stderr or ''}\n(timed out after {COMMAND_TIMEOUT_S} s)"
    return res.stdout + res.stderr


def as_report(guide: Guide, checked: list[Checked]) -> dict:
    return {"file": str(guide.path), "title": guide.title, "checked": True, "ok": all(c.ok for c in checked),
            "commands": [asdict(c) for c in checked]}
