from lab.reports import rates


def run(verdict, expected="reproduces", target="xenial-ga", total=300.0, notready=190.0, why="ok"):
    return {"scenario": "cookie", "target": target, "variant": "", "verdict": verdict, "verdict_reason": why,
            "expected": {"verdict": expected}, "total_seconds": total, "report_file": f"/r/{verdict}-{total}.json",
            "timings": {"injection_to_node-notready-pleg_s": notready, "pid_capacity": {"not": "a number"}}}


def test_counts_rate_spread_and_why_a_run_missed():
    summaries = rates.summarize([run("reproduces", total=300, notready=185), run("reproduces", total=320, notready=188),
                                 run("inconclusive", total=500, notready=400, why="incomplete chain: never saw x"),
                                 run("immune", expected="immune", target="bookworm", total=240)])
    cookie = next(s for s in summaries if s["target"] == "xenial-ga")
    assert cookie["runs"] == 3 and cookie["verdicts"] == {"reproduces": 2, "inconclusive": 1}
    assert cookie["rate_of_expected"] == 0.67
    assert cookie["timings"]["injection_to_node-notready-pleg_s"] == {"min": 185, "median": 188, "max": 400, "n": 3}
    assert "pid_capacity" not in cookie["timings"]
    text = "\n".join(rates.lines(cookie))
    assert "2/3 reproduces as expected" in text and "inconclusive: incomplete chain: never saw x" in text
    assert next(s for s in summaries if s["target"] == "bookworm")["rate_of_expected"] == 1.0


def test_a_rates_summary_beside_the_runs_is_not_taken_for_a_run(tmp_path, monkeypatch):
    # A --repeat run writes its summary (a JSON list) among the runs' reports;
    # readers of "every report" (the index page, mountunits' container bound)
    # once failed on it with AttributeError.
    from lab.reports import page, store
    monkeypatch.setenv("NODELAB_REPORTS_DIR", str(tmp_path))
    summary = rates.write(rates.summarize([run("reproduces")]))
    report = store.write({**run("reproduces"), "run": "cookie-xenial-ga-20261205-050000"})
    assert store.every_report() == [report]
    try:
        store.load(summary)
    except ValueError as exc:
        assert "not a run's report" in str(exc)
    else:
        raise AssertionError("a rates summary loaded as a run")
    assert "cookie-xenial-ga-20261205-050000.html" in page.render_index(tmp_path).read_text()
