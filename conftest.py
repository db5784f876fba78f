# The lab's pytest wiring (--target, the `lab` and `target` fixtures) for scenarios/.
pytest_plugins = ["lab.pytest_plugin"]
