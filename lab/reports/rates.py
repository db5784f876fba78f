"""How often a scenario does what it should: a summary of N runs of the same
(scenario, target, variant), each on a fresh node (a reproducer is trusted
when it reproduces every time)."""

import json
import statistics
import time
from collections import Counter

from lab import paths
from lab.reports import store


def summarize(reports: list[dict]) -> list[dict]:
    """One summary per (scenario, target, variant): verdict counts, the rate of
    the expected verdict, the spread of each numeric timing, and why any run
    was inconclusive."""
    groups: dict[tuple, list[dict]] = {}
    for r in reports:
        groups.setdefault((r["scenario"], r["target"], r.get("variant", "")), []).append(r)
    out = []
    for (scenario, target, variant), runs in groups.items():
        expected = Counter(r.get("expected", {}).get("verdict") for r in runs).most_common(1)[0][0]
        timings: dict[str, list[float]] = {}
        for r in runs:
            for name, value in {**r.get("timings", {}), "total_seconds": r.get("total_seconds")}.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    timings.setdefault(name, []).append(value)
        out.append({
            "scenario": scenario, "target": target, "variant": variant, "runs": len(runs),
            "expected": expected, "verdicts": dict(Counter(r["verdict"] for r in runs)),
            "rate_of_expected": round(sum(r["verdict"] == expected for r in runs) / len(runs), 2),
            "timings": {name: {"min": min(v), "median": round(statistics.median(v), 3), "max": max(v), "n": len(v)}
                        for name, v in sorted(timings.items())},
            "not_as_expected": [{"report": r.get("report_file"), "verdict": r["verdict"], "why": r["verdict_reason"]}
                                for r in runs if r["verdict"] != expected],
        })
    return out


def lines(summary: dict, timings: tuple[str, ...] = ()) -> list[str]:
    head = f"{summary['scenario']} on {summary['target']}{' (' + summary['variant'] + ')' if summary['variant'] else ''}"
    verdicts = ", ".join(f"{v} {n}" for v, n in sorted(summary["verdicts"].items()))
    out = [f"{head}: {summary['verdicts'].get(summary['expected'], 0)}/{summary['runs']} {summary['expected']} "
           f"as expected ({verdicts})"]
    for name, spread in summary["timings"].items():
        if not timings or name in timings:
            out.append(f"  {name}: min {spread['min']} median {spread['median']} max {spread['max']}")
    for miss in summary["not_as_expected"]:
        out.append(f"  {miss['verdict']}: {miss['why']} ({miss['report']})")
    return out


def write(summaries: list[dict]) -> str:
    out = paths.reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{store.RATES_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summaries, indent=2, default=str))
    return str(path)
