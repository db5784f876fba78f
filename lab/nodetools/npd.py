"""node-problem-detector's custom plugin monitors, run by the lab on a node.

The detectors the lab ships (detectors/, installed as the package
`nodelab_detectors`) are NPD custom plugin configs, each with the check
programs its rules call. NPD itself is in no package source here, so the lab
follows its plugin protocol the way pkg/custompluginmonitor/plugin does: each
rule's program runs every `invoke_interval` with the rule's timeout (or the
global one when that is shorter or unset); exit 0 is OK, 1 is a problem
(NonOK), anything else, a timeout included, is Unknown; the trimmed stdout, cut
to `max_output_length` bytes, is the message. A permanent rule's condition
is True while its program says NonOK and falls back to the config's default
condition when it says OK. Configs are checked as NPD's Validate does (plugin
"custom", no rule timeout above the global one, every permanent rule's
condition preset), plus what the lab asks besides: each rule's program
ships with the config, and no program may outlast the interval.
"""

import importlib.resources
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from lab import timefmt
from lab.backends.node import Node

PACKAGE = "nodelab_detectors"
OK, NONOK, UNKNOWN = "OK", "NonOK", "Unknown"
# NPD's defaults (pkg/custompluginmonitor/types/config.go)
DEFAULT_TIMEOUT_S, DEFAULT_INTERVAL_S, DEFAULT_MAX_OUTPUT = 5.0, 30.0, 80


@dataclass(frozen=True)
class Rule:
    type: str           # "permanent" (a node condition) or "temporary" (an event)
    condition: str
    reason: str
    path: str           # where the program lives on the node, as NPD would run it
    args: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class Monitor:
    name: str           # the detectors/ folder: the incident it watches for
    file: str           # the config's file name
    source: str
    interval_s: float
    timeout_s: float
    max_output: int
    rules: tuple[Rule, ...]
    programs: dict = field(default_factory=dict)   # rule path -> the program's bytes

    def effective_timeout(self, rule: Rule) -> float:
        return min(rule.timeout_s, self.timeout_s) if rule.timeout_s else self.timeout_s


@dataclass(frozen=True)
class Invocation:
    at: float           # when the answer came (NPD reports it then), on the caller's clock
    status: str
    message: str
    seconds: float


def _duration(text, default: float) -> float:
    return default if text is None else timefmt.go_duration(text)


def problems(config: dict, programs: set[str]) -> list[str]:
    """What NPD's ApplyConfiguration/Validate would refuse, and what the lab
    requires besides (a program shipped for every rule, a message for every
    condition); empty when the config is good. `programs` are the file names
    shipped beside it."""
    found = []
    if config.get("plugin") != "custom":
        found.append(f"plugin is {config.get('plugin')!r}, NPD supports only \"custom\"")
    if not config.get("source"):
        found.append("no source")
    glob = config.get("pluginConfig", {})
    try:
        timeout = _duration(glob.get("timeout"), DEFAULT_TIMEOUT_S)
        interval = _duration(glob.get("invoke_interval"), DEFAULT_INTERVAL_S)
        if interval <= 0 or timeout <= 0:
            found.append("invoke_interval and timeout must be positive")
        elif timeout > interval:
            found.append(f"global timeout {timeout} s is longer than invoke_interval {interval} s")
    except ValueError as exc:
        found.append(str(exc))
        timeout = DEFAULT_TIMEOUT_S
    for key in ("max_output_length", "concurrency"):
        if key in glob and not (isinstance(glob[key], int) and glob[key] > 0):
            found.append(f"{key} must be a positive whole number")
    conditions = {c.get("type"): c for c in config.get("conditions", [])}
    for ctype, cond in conditions.items():
        if not (ctype and cond.get("reason") and cond.get("message")):
            found.append(f"condition {ctype!r} needs type, reason and message")
    rules = config.get("rules") or []
    if not rules:
        found.append("no rules")
    for i, rule in enumerate(rules):
        where = f"rule {i} ({rule.get('reason', '?')})"
        if rule.get("type") not in ("permanent", "temporary"):
            found.append(f"{where}: type must be permanent or temporary")
        if not rule.get("reason"):
            found.append(f"{where}: no reason")
        if rule.get("type") == "permanent" and rule.get("condition") not in conditions:
            found.append(f"{where}: permanent problem {rule.get('condition')!r} has no preset default condition")
        path = rule.get("path", "")
        if not path.startswith("/"):
            found.append(f"{where}: path {path!r} is not absolute")
        elif PurePosixPath(path).name not in programs:
            found.append(f"{where}: path {path!r} names no program shipped with the config")
        if not all(isinstance(a, str) for a in rule.get("args", [])):
            found.append(f"{where}: args must be strings")
        if "invoke_interval" in rule:
            found.append(f"{where}: a rule's own invoke_interval is not run by the lab (use pluginConfig's)")
        try:
            if rule.get("timeout") is not None and _duration(rule["timeout"], 0) <= 0:
                found.append(f"{where}: timeout must be positive")
            if _duration(rule.get("timeout"), 0) > timeout:
                found.append(f"{where}: timeout {rule['timeout']} is greater than the global timeout")
        except ValueError as exc:
            found.append(f"{where}: {exc}")
    return found


def parse(name: str, file: str, config: dict, programs: dict[str, bytes]) -> Monitor:
    glob = config.get("pluginConfig", {})
    rules = tuple(Rule(r["type"], r.get("condition", ""), r["reason"], r["path"], tuple(r.get("args", [])),
                       _duration(r.get("timeout"), 0)) for r in config["rules"])
    return Monitor(name, file, config["source"], _duration(glob.get("invoke_interval"), DEFAULT_INTERVAL_S),
                   _duration(glob.get("timeout"), DEFAULT_TIMEOUT_S), glob.get("max_output_length", DEFAULT_MAX_OUTPUT),
                   rules,
                   {r.path: programs[PurePosixPath(r.path).name] for r in rules})


def _folders():
    root = importlib.resources.files(PACKAGE)
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith("_")), key=lambda d: d.name)


def shipped_configs() -> list[tuple[str, str, dict, dict[str, bytes]]]:
    """(incident, config file, config, {program file: bytes}) for every config shipped."""
    found = []
    for folder in _folders():
        programs = {f.name: f.read_bytes() for f in folder.iterdir() if not f.name.endswith(".json")}
        for f in sorted(folder.iterdir(), key=lambda f: f.name):
            if f.name.endswith(".json"):
                found.append((folder.name, f.name, json.loads(f.read_text()), programs))
    return found


def monitors_for(incident: str) -> list[Monitor]:
    """The monitors shipped for an incident (a scenario's name); none if it has none."""
    return [parse(name, file, config, programs) for name, file, config, programs in shipped_configs()
            if name == incident]


def install(node: Node, monitor: Monitor) -> None:
    for path, program in monitor.programs.items():
        node.run(["mkdir", "-p", str(PurePosixPath(path).parent)])
        node.put_file(path, program, 0o755)


def invoke(node: Node, monitor: Monitor, rule: Rule, clock=time.monotonic) -> Invocation:
    """One invocation of a rule's program, read as NPD reads it."""
    timeout = monitor.effective_timeout(rule)
    t0 = clock()
    try:
        res = node.run([rule.path, *rule.args], timeout=max(1, timeout), check=False)
    except Exception as exc:  # noqa: BLE001 - a node that cannot run it is NPD's "Error in starting plugin"
        return Invocation(clock(), UNKNOWN, f"Error in starting plugin: {exc}"[:monitor.max_output], clock() - t0)
    output = res.stdout.strip()
    if res.timed_out:
        output = f"Timeout when running plugin {rule.path!r}: output - {output!r}"
    status = UNKNOWN if res.timed_out else {0: OK, 1: NONOK}.get(res.rc, UNKNOWN)
    if status == UNKNOWN and not output:
        output = res.stderr.strip()   # why it could not run (NPD logs it; the report keeps it)
    cut = output.encode()[:monitor.max_output].decode(errors="ignore")
    end = clock()
    return Invocation(end, status, cut, round(end - t0, 3))


class DetectorWatch:
    """Every monitor's rules invoked at their interval in the background for the
    whole run, as NPD would; each rule's status changes kept with their time."""

    def __init__(self, node: Node, monitors: list[Monitor], clock=time.monotonic):
        self.node, self.monitors, self.clock = node, monitors, clock
        self.invocations: dict[str, list[Invocation]] = {self.key(m, r): [] for m in monitors for r in m.rules}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(m,), daemon=True, name=f"npd-{m.source}")
                         for m in monitors]

    @staticmethod
    def key(monitor: Monitor, rule: Rule) -> str:
        return f"{monitor.source}/{rule.reason}"

    def start(self) -> "DetectorWatch":
        for t in self._threads:
            t.start()
        return self

    def _loop(self, monitor: Monitor) -> None:
        while not self._stop.is_set():
            started = self.clock()
            for rule in monitor.rules:   # concurrency 1: the shipped configs ask for no more
                self.invocations[self.key(monitor, rule)].append(invoke(self.node, monitor, rule, self.clock))
            self._stop.wait(max(0.0, monitor.interval_s - (self.clock() - started)))

    def stop(self) -> dict[str, list[Invocation]]:
        """Stop the rounds and take one last answer from every rule, so a run's
        end is judged on its end, not on a round up to an interval old."""
        if self._stop.is_set():
            return self.invocations
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        for monitor in self.monitors:
            for rule in monitor.rules:
                self.invocations[self.key(monitor, rule)].append(invoke(self.node, monitor, rule, self.clock))
        return self.invocations


def transitions(invocations: list[Invocation]) -> list[Invocation]:
    """The invocations at which the status changed (the first one included)."""
    out = []
    for inv in invocations:
        if not out or inv.status != out[-1].status:
            out.append(inv)
    return out
