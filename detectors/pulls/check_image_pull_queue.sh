#!/bin/sh
# check_image_pull_queue.sh: pods kept waiting for their images one behind another.
#
# kubelet pulls images one at a time by default (serializeImagePulls: true):
# while a large image comes from a slow registry, every later pod on the node
# waits in ContainerCreating for its own image, even a tiny one. What the node
# shows: pod sandboxes that have been up for a while with no container of
# their own yet (kubelet creates a pod's containers only once their images are
# there). One such pod is a slow pull; several at once are pulls queued behind
# each other. Reads docker's view of kubelet's pods (dockershim's labels).
#
# node-problem-detector custom plugin protocol: exit 0 OK, 1 problem, 2 unknown.
# Usage: check_image_pull_queue.sh [MIN_WAITING_PODS] [WAIT_SECONDS]   (defaults 2, 10)
# Needs docker and GNU date; Ubuntu 16.04's and Debian 12's work.
min_pods=${1:-2}
wait_s=${2:-10}
sandboxes=$(docker ps --filter label=io.kubernetes.docker.type=podsandbox \
  --format '{{.ID}} {{.Label "io.kubernetes.pod.uid"}}' 2>&1) \
  || { echo "cannot list pod sandboxes: $(printf '%s\n' "$sandboxes" | head -n 1)"; exit 2; }
owners=$(docker ps -a --filter label=io.kubernetes.docker.type=container \
  --format '{{.Label "io.kubernetes.pod.uid"}}' 2>&1) \
  || { echo "cannot list containers: $(printf '%s\n' "$owners" | head -n 1)"; exit 2; }
ids=$(printf '%s\n' "$sandboxes" | while read -r sid uid; do
        [ -n "$uid" ] && ! printf '%s\n' "$owners" | grep -qx "$uid" && echo "$sid"
      done)
now=$(date +%s)
waiting=0 longest=0 total=0
if [ -n "$ids" ]; then
  # shellcheck disable=SC2086
  started=$(docker inspect -f '{{.State.StartedAt}}' $ids 2>/dev/null)
  for stamp in $started; do
    since=$(date -d "$stamp" +%s 2>/dev/null) || continue
    age=$((now - since))
    total=$((total + 1))
    if [ "$age" -ge "$wait_s" ]; then
      waiting=$((waiting + 1))
      [ "$age" -gt "$longest" ] && longest=$age
    fi
  done
fi
if [ "$waiting" -ge "$min_pods" ]; then
  echo "$waiting pods have waited ${wait_s} s or more for their first container (longest $longest s): image pulls queued behind a slow one?"
  exit 1
fi
echo "$total pods without a container yet, $waiting of them for ${wait_s} s or more"
exit 0
