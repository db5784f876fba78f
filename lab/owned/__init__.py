"""What the lab owns on the host: the state file (recorded before it exists), the one-run lock, daemons it started."""
