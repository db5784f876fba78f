"""A run's JSON report: written beside the others, summarised on the console."""

import json
import time
from pathlib import Path

from lab import paths
from lab.progress import console
from lab.scenario.record import BugRecord


def record_dict(r: BugRecord) -> dict:
    return {"id": r.id, "title": r.title, "component": r.component, "mechanism": r.mechanism,
            "references": list(r.references), "affected": r.affected,
            "fixes": [{"version": f.version, "line": f.line, "note": f.note} for f in r.fixes]}


def run_id(scenario: str, target: str, variant: str) -> str:
    """Names a run's report (<id>.json) and its logs directory (<id>/) in the reports directory."""
    return f"{scenario}-{target}{f'-{variant}' if variant else ''}-{time.strftime('%Y%m%d-%H%M%S')}"


def logs_dir(run: str) -> Path:
    return paths.reports_dir() / run


def write(report: dict) -> Path:
    out = paths.reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{report['run']}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


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
    for s in report.get("stand_ins", []):
        c.print(f"  stand-in: {s}")
    if report.get("logs"):
        c.print(f"  node logs: {Path(report['logs'][0]).parent}")
    c.print(f"  report: {report['report_file']}")


def explain(report: dict) -> str:
    lines = [f"{report['scenario']} on {report['target']} {report.get('variant', '')}: verdict {report['verdict']}, expected "
             f"{report.get('expected', {}).get('verdict')}: {report['verdict_reason']}"]
    for o in report.get("observations", []):
        when = f"injection{o['at']:+}s" if o["at"] is not None else f"start+{o['t']}s"
        lines.append(f"  [{o['kind']}] {o['name']}: {'seen' if o['seen'] else 'NOT seen'} at {when}: {o['summary']}")
    if report.get("error"):
        lines.append(report.get("traceback", ""))
    lines.append(f"report: {report['report_file']}")
    return "\n".join(lines)
