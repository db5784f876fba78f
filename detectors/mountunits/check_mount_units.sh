#!/bin/sh
# check_mount_units.sh: transient mount units left behind by kubelet's mounts.
#
# kubelet <= 1.19 ran every mount under /var/lib/kubelet/pods through
# `systemd-run --scope --description="Kubernetes transient mount for <target>"`.
# systemd 229 (Ubuntu 16.04) does not collect such a scope after its mount
# command exits when it gets no cgroup-empty notification, so the units pile
# up, PID 1 grows and slows, and a node churning pods with subPath or secret
# volumes ends with thousands of them. This check counts the units whose
# target is no longer mounted (what lab/assets/nodelab-mount-unit-cleaner
# stops).
#
# node-problem-detector custom plugin protocol: exit 0 OK, 1 problem, 2 unknown.
# Usage: check_mount_units.sh [MAX_STALE_UNITS]   (default 20)
# Needs systemctl and awk; systemd 229's systemctl works (no --value).
max=${1:-20}
mountinfo=${NODELAB_MOUNTINFO:-/proc/self/mountinfo}   # (the variable lets tests give a recorded table)
listing=$(systemctl list-units --all --no-legend --plain --type=scope 2>&1) || {
  echo "systemctl list-units failed: $(printf '%s\n' "$listing" | head -n 1)"; exit 2; }
# The mount table is read by awk itself: a node with thousands of mounts
# would not fit in one command-line argument.
counts=$(printf '%s\n' "$listing" | awk -v mi="$mountinfo" '
  BEGIN { while ((getline line < mi) > 0) { split(line, f, " "); live[f[5]] = 1 } }
  {
    desc = ""; for (i = 5; i <= NF; i++) desc = desc (i > 5 ? " " : "") $i
    prefix = "Kubernetes transient mount for "
    if (index(desc, prefix) != 1) next
    all++
    if (!(substr(desc, length(prefix) + 1) in live)) stale++
  }
  END { print stale + 0, all + 0 }')
stale=${counts% *}
all=${counts#* }
case "$stale$all" in
  ''|*[!0-9]*) echo "could not count transient mount units (awk said: $counts)"; exit 2 ;;
esac
if [ "$stale" -gt "$max" ]; then
  echo "$stale 'Kubernetes transient mount' units whose target is no longer mounted ($all loaded): systemd is not collecting them"
  exit 1
fi
echo "$stale stale 'Kubernetes transient mount' units ($all loaded)"
exit 0
