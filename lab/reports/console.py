"""A run on the console: the summary after it, and the explanation a failed test shows."""

from pathlib import Path

from lab.progress import console


def title(report: dict) -> str:
    variant = f" ({report['variant']})" if report.get("variant") else ""
    return f"{report['scenario']} on {report['target']}{variant}"


def summary(report: dict) -> None:
    c = console()
    exp = report.get("expected", {}).get("verdict", "?")
    colour = "green" if report["verdict"] == exp else "red"
    c.print(f"[{colour}]{title(report)}: {report['verdict']} (expected {exp})[/{colour}] — {report['verdict_reason']}")
    for name, p in report.get("phases", {}).items():
        c.print(f"  phase {name}: {p.get('seconds', p.get('skipped'))}")
    for name, seconds in report.get("timings", {}).items():
        c.print(f"  {name}: {seconds}")
    for d in report.get("detectors", []):
        state = "passes" if d.get("passes") else "not judged" if d.get("passes") is None else "FAILS"
        c.print(f"  detector {d.get('source', '?')}/{d.get('reason', '?')}: {state}: {d.get('why')}")
    for s in report.get("stand_ins", []):
        c.print(f"  stand-in: {s}")
    if report.get("logs"):
        c.print(f"  node logs: {Path(report['logs'][0]).parent}")
    c.print(f"  report: {report['report_file']}")
    if report.get("page"):
        c.print(f"  page: {report['page']}")


def explain(report: dict) -> str:
    lines = [f"{report['scenario']} on {report['target']} {report.get('variant', '')}: verdict {report['verdict']}, expected "
             f"{report.get('expected', {}).get('verdict')}: {report['verdict_reason']}"]
    for o in report.get("observations", []):
        when = f"injection{o['at']:+}s" if o["at"] is not None else f"start+{o['t']}s"
        lines.append(f"  [{o['kind']}] {o['name']}: {'seen' if o['seen'] else 'NOT seen'} at {when}: {o['summary']}")
    for d in report.get("detectors", []):
        state = "passes" if d.get("passes") else "not judged" if d.get("passes") is None else "fails"
        lines.append(f"  [detector] {d.get('source', '?')}/{d.get('reason', '?')}: {state}: {d.get('why')}")
    if report.get("error"):
        lines.append(report.get("traceback", ""))
    lines.append(f"report: {report['report_file']}")
    return "\n".join(lines)


def recap(report: dict) -> list[str]:
    """A run in a few lines for the end of a test session: the verdict against
    the expected one and the time; for a run that missed it, why (the reason
    whole, the step's error, what did not hold) and where its evidence is, so
    the tail of a CI log says what failed without its tracebacks."""
    exp = report.get("expected", {}).get("verdict", "?")
    lines = [f"{title(report)}: {report['verdict']} (expected {exp}) in {report.get('total_seconds', '?')} s"]
    if report["verdict"] == exp:
        return lines
    lines.append(f"  why: {report['verdict_reason']}")
    if report.get("error"):
        lines.append(f"  error: {report['error']}")
    lines += [f"  not seen: [{o['kind']}] {o['name']}: {o['summary']}"
              for o in report.get("observations", []) if not o["seen"]]
    for line in report.get("kernel_lockups", {}).get("first", []):
        lines.append(f"  console: {line}")
    if report.get("node_unanswering"):
        lines.append(f"  node: {report['node_unanswering']}")
    if report.get("logs"):
        lines.append(f"  node logs: {Path(report['logs'][0]).parent}")
    lines.append(f"  report: {report['report_file']}")
    return lines
