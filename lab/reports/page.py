"""A run's HTML page and the index of every run, rendered with Jinja2 from the JSON reports.

Everything the page shows is in the file (the timeline is inline SVG, the
styles inline); its only links are to the node's logs and the JSON beside it,
and to the bug's upstream references.
"""

import os
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from lab import paths
from lab.progress import say
from lab.reports import links, store, timeline

TEMPLATES = Environment(loader=PackageLoader("lab.reports", "templates"), autoescape=select_autoescape(["j2"]))


def render(report: dict, directory: Path | None = None) -> Path:
    """Write <run>.html beside the report; its path."""
    directory = directory or Path(report.get("report_file", "")).parent or paths.reports_dir()
    out = directory / f"{report['run']}.html"
    logs = [(Path(p).name, os.path.relpath(p, directory)) for p in report.get("logs", []) if Path(p).exists()]
    html = TEMPLATES.get_template("run.html.j2").render(
        r=report, title=f"{report['scenario']} on {report['target']}"
                        f"{' (' + report['variant'] + ')' if report.get('variant') else ''}",
        expected=report.get("expected", {}).get("verdict", "?"), env=report.get("environment", {}),
        plot=timeline.svg(report), references=[(ref, links.links(ref)) for ref in report["bug"]["references"]],
        logs=logs, json_href=f"{report['run']}.json")
    out.write_text(html)
    return out


def render_index(directory: Path | None = None) -> Path:
    """index.html of every run in the reports directory, newest first."""
    directory = directory or paths.reports_dir()
    rows = []
    for path in store.every_report(directory):
        try:
            r = store.load(path)
        except (OSError, ValueError):
            continue
        rows.append({"started": r.get("started", ""), "scenario": r.get("scenario"), "target": r.get("target"),
                     "variant": r.get("variant"), "verdict": r.get("verdict"),
                     "expected": r.get("expected", {}).get("verdict", "?"), "total_seconds": r.get("total_seconds"),
                     "page": f"{r['run']}.html"})
    out = directory / "index.html"
    out.write_text(TEMPLATES.get_template("index.html.j2").render(rows=rows, directory=directory))
    return out


def publish(report: dict) -> Path | None:
    """Render the run's page and the index; a failure to draw never fails the run."""
    try:
        page = render(report)
        render_index(page.parent)
        return page
    except Exception as exc:  # noqa: BLE001 - the JSON report is written; the reader learns why there is no page
        say(f"[yellow]could not render the page of {report['run']}: {type(exc).__name__}: {exc}[/yellow]")
        return None
