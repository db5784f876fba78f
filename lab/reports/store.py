"""Where runs are kept: <reports dir>/<run>.json, its page <run>.html, and
the node's logs in <run>/, beside every other run's."""

import json
import time
from pathlib import Path

from lab import paths

RATES_PREFIX = "rates-"   # lab.reports.rates names its summaries so


def record_dict(r) -> dict:
    """A bug record (lab.scenario.record.BugRecord) as the report keeps it."""
    return {"id": r.id, "title": r.title, "component": r.component, "mechanism": r.mechanism,
            "references": list(r.references), "affected": r.affected,
            "fixes": [{"version": f.version, "line": f.line, "note": f.note} for f in r.fixes]}


def run_id(scenario: str, target: str, variant: str) -> str:
    """Names a run's report (<id>.json) and its logs directory (<id>/) in the reports directory."""
    return f"{scenario}-{target}{f'-{variant}' if variant else ''}-{time.strftime('%Y%m%d-%H%M%S')}"


def logs_dir(run: str) -> Path:
    return paths.reports_dir() / run


def page_file(run: str) -> Path:
    return paths.reports_dir() / f"{run}.html"


def write(report: dict) -> Path:
    out = paths.reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{report['run']}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def load(path: Path) -> dict:
    report = json.loads(Path(path).read_text())
    if not isinstance(report, dict) or "scenario" not in report:
        raise ValueError(f"{path} is not a run's report")
    report.setdefault("run", Path(path).stem)       # reports written before runs had ids
    report.setdefault("report_file", str(path))
    return report


def every_report(directory: Path | None = None) -> list[Path]:
    """The runs' JSON reports in the reports directory, newest first (not the
    rates summaries `--repeat` writes beside them, lab.reports.rates)."""
    directory = directory or paths.reports_dir()
    return sorted((p for p in directory.glob("*.json") if not p.name.startswith(RATES_PREFIX)),
                  key=lambda p: p.stat().st_mtime, reverse=True)
