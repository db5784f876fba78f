"""The scenario framework: bug records, phases, observations, verdicts, reports."""
