"""The cluster: the lab as a whole (backend, control plane, nodes), PKI, the Kubernetes client, small pods."""
