"""Recipes and builds: targets (what a node is made of), package archives, node images, Kubernetes binaries, small C tools."""
