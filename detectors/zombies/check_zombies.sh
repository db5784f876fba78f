#!/bin/sh
# check_zombies.sh: a parent that does not reap its children, and the PID space.
#
# A cron PID 1 that does not reap (supercronic <= 0.2.30 as a container's PID
# 1) leaves every background child of its jobs as a zombie; each holds a PID
# until the node has none left and docker, containerd and kubelet fail with
# `pthread_create failed`. This check counts zombies per parent and the tasks
# in use against the kernel's pid_max, and names the worst parent.
#
# node-problem-detector custom plugin protocol: exit 0 OK, 1 problem, 2 unknown.
# Usage: check_zombies.sh [MAX_ZOMBIES_PER_PARENT] [MAX_PID_USE_PERCENT]   (defaults 100, 80)
# Needs ps (procps) and awk; Ubuntu 16.04's and Debian 12's work.
max_zombies=${1:-100}
max_pct=${2:-80}
procs=$(ps -eo ppid=,stat= 2>&1) || { echo "cannot list processes: $(printf '%s\n' "$procs" | head -n 1)"; exit 2; }
worst=$(printf '%s\n' "$procs" | awk '$2 ~ /^Z/ { n[$1]++ } END { for (p in n) if (n[p] > m) { m = n[p]; w = p } ; print m + 0, w + 0 }')
zombies=${worst% *}
parent=${worst#* }
tasks=$(ls -d /proc/[0-9]*/task/[0-9]* 2>/dev/null | wc -l)
pid_max=$(cat /proc/sys/kernel/pid_max)
pct=$((tasks * 100 / pid_max))
comm=$(cat "/proc/$parent/comm" 2>/dev/null || echo '?')
if [ "$zombies" -gt "$max_zombies" ]; then
  echo "$zombies zombies under PID $parent ($comm), which does not reap; $tasks of pid_max $pid_max tasks in use"
  exit 1
fi
if [ "$pct" -ge "$max_pct" ]; then
  echo "$tasks of pid_max $pid_max tasks in use (${pct}%); most zombies under one parent: $zombies (PID $parent, $comm)"
  exit 1
fi
echo "$tasks of pid_max $pid_max tasks in use; most zombies under one parent: $zombies"
exit 0
