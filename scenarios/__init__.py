"""nodelab's scenarios, one module per documented bug.

Installed with nodelab as the package `nodelab_scenarios`, so `nodelab run
NAME` finds them from any directory; from the checkout, `pytest scenarios/`
runs them (the lab's pytest plugin makes each module's tests from its
SCENARIO: targets, variants and --param, the same for every scenario).
"""
