"""Nodes: what scenarios act on, behind one interface (docker backend today)."""
