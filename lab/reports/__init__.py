"""Run reports: the JSON record of a run and its node's logs (store), the
console summary (console), the HTML page with the incident's timeline and the
index of runs (page, timeline, links)."""
