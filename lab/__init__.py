"""nodelab: reproduce documented Kubernetes node bugs on throw-away nodes."""

__version__ = "0.1.0"
