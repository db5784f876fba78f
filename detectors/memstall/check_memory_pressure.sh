#!/bin/sh
# check_memory_pressure.sh: is the node stalling on memory (thrashing without swap)?
#
# Without swap, a node at the edge of OOM can only reclaim programs' text and
# page cache, which are read back at once: kswapd runs, every task waits on
# major faults, kubelet's heartbeat stops, and the OOM killer may never come.
# Where the kernel has PSI (4.20 and newer, booted with psi=1 where it is off
# by default) this check reads /proc/pressure/memory's `full avg10` (the share
# of the last 10 s in which every non-idle task waited on memory); where it
# has none (Ubuntu 16.04's 4.4) it samples major faults per second and
# kswapd's CPU over a short interval.
#
# node-problem-detector custom plugin protocol: exit 0 OK, 1 problem, 2 unknown.
# Usage: check_memory_pressure.sh [FULL_AVG10_PERCENT] [MAJOR_FAULTS_PER_S] [KSWAPD_CPU_PERCENT] [SAMPLE_S]
#        (defaults 10, 100, 10, 2; without PSI both of the last two must be exceeded)
# Needs awk; Ubuntu 16.04's and Debian 12's work.
full_max=${1:-10}
faults_max=${2:-100}
kswapd_max=${3:-10}
sample=${4:-2}
if [ -r /proc/pressure/memory ]; then
  full=$(awk '$1 == "full" { sub("avg10=", "", $2); print $2 }' /proc/pressure/memory)
  some=$(awk '$1 == "some" { sub("avg10=", "", $2); print $2 }' /proc/pressure/memory)
  if awk -v f="$full" -v m="$full_max" 'BEGIN { exit !(f >= m) }'; then
    echo "memory pressure: full avg10=${full}% (some ${some}%): every task waited on memory that long"
    exit 1
  fi
  echo "memory pressure: full avg10=${full}% (some ${some}%)"
  exit 0
fi
kswapd_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 ~ /^\(kswapd/ { t += $14 + $15 } END { print t + 0 }'; }
majflt() { awk '$1 == "pgmajfault" { print $2 }' /proc/vmstat; }
f0=$(majflt); k0=$(kswapd_ticks)
sleep "$sample"
f1=$(majflt); k1=$(kswapd_ticks)
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
faults=$(((f1 - f0) / sample))
kswapd=$(((k1 - k0) * 100 / hz / sample))
if [ "$faults" -ge "$faults_max" ] && [ "$kswapd" -ge "$kswapd_max" ]; then
  echo "memory thrashing (no PSI): $faults major faults/s, kswapd ${kswapd}% of a CPU over ${sample} s"
  exit 1
fi
echo "no PSI; $faults major faults/s, kswapd ${kswapd}% of a CPU over ${sample} s"
exit 0
