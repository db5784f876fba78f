"""node-problem-detector custom plugin monitors for the lab's incidents, one
folder per scenario: each holds the NPD config(s) and the check programs
their rules run (installed as the package `nodelab_detectors`, so the lab
puts them on its nodes; see the README's "Detectors" section)."""
