"""The incident as a picture: phases as bands, each observation as a mark at
its time, the node's Ready condition as a line, and the scenario's own series
(zombie count, leaked units, pod lags) beneath. Drawn with matplotlib into a
self-contained SVG (fonts as paths): opening the page fetches nothing."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first

PHASE_ORDER = ("boot", "prepare", "inject", "detect", "recover", "verify", "teardown")
PHASE_COLOURS = {"boot": "#eeeeee", "prepare": "#e3f2fd", "inject": "#fff3e0", "detect": "#ffebee",
                 "recover": "#e8f5e9", "verify": "#f3e5f5", "teardown": "#eeeeee"}
# kind -> (lane, marker, colour, label)
KINDS = {
    "injection": (5, "*", "#ef6c00", "injection"),
    "symptom": (4, "X", "#c62828", "symptom"),
    "fix-fingerprint": (3, "D", "#2e7d32", "fix fingerprint"),
    "recovery": (2, "^", "#1565c0", "recovery"),
    "steady-state": (1, "s", "#424242", "steady state"),
    "evidence": (0, "o", "#9e9e9e", "evidence"),
}
READY_LEVEL = {"True": 1.0, "Unknown": 0.5, "False": 0.0}


def injection_offset(report: dict) -> float:
    """Seconds from the run's start to the injection (0 when there was none)."""
    for o in report.get("observations", []):
        if o.get("at") is not None:
            return o["t"] - o["at"]
    return 0.0


def phase_spans(report: dict) -> list[tuple[str, float, float]]:
    """(phase, start, end) in seconds from the run's start; older reports have no
    starts, so phases are laid end to end in their order."""
    spans, clock = [], 0.0
    phases = report.get("phases", {})
    for name in sorted(phases, key=lambda n: PHASE_ORDER.index(n) if n in PHASE_ORDER else 99):
        p = phases[name]
        if "seconds" not in p:
            continue
        start = p.get("start", clock)
        spans.append((name, start, start + p["seconds"]))
        clock = start + p["seconds"]
    return spans


def svg(report: dict) -> str:
    """The run's timeline as SVG text; x is seconds since the injection."""
    zero = injection_offset(report)
    series = report.get("series", {})
    extra = [name for name in series if name != "node Ready"]
    rows = 2 + len(extra)
    fig, axes = plt.subplots(rows, 1, sharex=True, figsize=(12, 3.2 + 1.4 * rows),
                             gridspec_kw={"height_ratios": [4, 1] + [1.6] * len(extra)})
    marks, ready = axes[0], axes[1]
    for ax in axes:
        for name, start, end in phase_spans(report):
            ax.axvspan(start - zero, end - zero, color=PHASE_COLOURS.get(name, "#eeeeee"), zorder=0)
        ax.axvline(0, color="#ef6c00", linewidth=0.8, linestyle="--", zorder=1)
        ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    span = max([end for _, _, end in phase_spans(report)] + [o["t"] for o in report.get("observations", [])] + [1])
    stacked: dict[int, tuple[float, int]] = {}   # lane -> (x of the last label, how many stand there)
    for i, o in enumerate(report.get("observations", []), 1):
        lane, marker, colour, _ = KINDS.get(o["kind"], KINDS["evidence"])
        x = o["t"] - zero
        marks.scatter([x], [lane], marker=marker, s=70, zorder=3, color=colour if o["seen"] else "white",
                      edgecolors=colour, linewidths=1.2)
        last_x, level = stacked.get(lane, (None, 0))
        # A label reaches about a sixth of the axis: labels closer than that stack up (four levels at most).
        level = (level + 1) % 4 if last_x is not None and x - last_x < span / 6 else 0
        stacked[lane] = (x, level)
        marks.annotate(f"{i} {o['name']}", (x, lane), xytext=(4, 5 + 8 * level), textcoords="offset points",
                       fontsize=6.5, color=colour)
    narrow = 0
    for name, start, end in phase_spans(report):   # a narrow band's name goes a little higher than its neighbour's
        narrow = narrow + 1 if end - start < span / 12 else 0
        marks.text((start + end) / 2 - zero, 5.75 + 0.3 * (narrow % 2), name, ha="center", va="bottom", fontsize=8,
                   color="#555555")
    marks.set_yticks([v[0] for v in KINDS.values()], [v[3] for v in KINDS.values()], fontsize=8)
    marks.set_ylim(-0.7, 6.4)
    marks.set_title(f"{report['scenario']} on {report['target']}{' (' + report['variant'] + ')' if report.get('variant') else ''}"
                    f": {report['verdict']} (expected {report.get('expected', {}).get('verdict', '?')})", fontsize=10)
    points = series.get("node Ready", {}).get("points", [])
    if points:
        ready.step([t - zero for t, _ in points], [READY_LEVEL.get(v, 0.5) for _, v in points], where="post",
                   color="#1565c0")
    else:
        ready.text(0.5, 0.5, "no Ready samples in this report", transform=ready.transAxes, ha="center", fontsize=8)
    ready.set_yticks([0, 0.5, 1], ["False", "Unknown", "True"], fontsize=7)
    ready.set_ylim(-0.2, 1.2)
    ready.set_ylabel("node Ready", fontsize=8)
    for ax, name in zip(axes[2:], extra):
        s = series[name]
        xs = [t - zero for t, _ in s["points"]]
        style = dict(marker="o", markersize=2.5, linewidth=1, color="#6a1b9a")
        if s.get("style") == "scatter":
            ax.scatter(xs, [v for _, v in s["points"]], s=8, color="#6a1b9a")
        else:
            ax.plot(xs, [v for _, v in s["points"]], **style)
        ax.set_ylabel(f"{name}\n({s.get('unit', '')})" if s.get("unit") else name, fontsize=8)
    axes[-1].set_xlabel("seconds since the injection", fontsize=9)
    fig.tight_layout()
    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path"}):
        fig.savefig(out, format="svg")
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]   # inline: no XML prolog inside HTML
