#!/bin/sh
# check_pods_pending_while_running.sh: the API server shows pods Pending whose
# containers have been running on this node for a while.
#
# kubelet reports each pod's status to the API server through a client-side
# rate limiter (kubeAPIQPS/kubeAPIBurst, 5/10 before Kubernetes 1.27). When
# tens of pods start on one node, their status updates queue behind each
# other: docker ps shows the containers running while kubectl shows the pods
# Pending for tens of seconds or minutes. kubelet logs no error for it (its
# client's throttling waits are each well under a second, logged at -v=3
# only), so this check compares the two views: the pods bound to this node
# that the API server says are Pending, against the running containers
# docker has for them. A pod counts when the API server knows of no running
# container of it (no container or init container status says running)
# while docker has had one of its containers running for WAIT_SECONDS or
# more: a pod whose init containers run, or one of whose containers runs
# while another is still pulling, has had its status written and does not
# count. One pod trailing is a slow start; several at once are a status
# pipeline that cannot keep up.
#
# It asks the API server as the node itself, with kubelet's kubeconfig (its
# own credentials may list the pods bound to it): server, token or client
# certificate and key, and CA, as paths or as inline -data, in YAML or JSON
# (one cluster and one user, as kubelet's have). The token goes to curl on its
# standard input, never on a command line; decoded -data files live in a
# private temporary directory removed on exit, SIGTERM (a timeout) included.
#
# node-problem-detector custom plugin protocol: exit 0 OK, 1 problem, 2 unknown.
# Usage: check_pods_pending_while_running.sh KUBECONFIG [MIN_PODS] [WAIT_SECONDS] [NODE_NAME]
#        (defaults 5, 15, $NODE_NAME or the hostname)
# Needs curl, docker, sed, GNU date and base64; Ubuntu 16.04's and Debian 12's work.
kubeconfig=$1
min_pods=${2:-5}
wait_s=${3:-15}
node=${4:-${NODE_NAME:-$(hostname)}}
[ -r "$kubeconfig" ] || { echo "cannot read kubeconfig '$kubeconfig'"; exit 2; }
# One "key: value" per line, for YAML and for JSON written on one line or many.
conf=$(tr ',{}[]' '\n\n\n\n\n' < "$kubeconfig")

field() {   # the first value of a key: key: value, "key": "value", 'key': 'value'
  printf '%s\n' "$conf" |
    sed -n "s/^[[:space:]-]*[\"']\{0,1\}$1[\"']\{0,1\}:[[:space:]]*[\"']\{0,1\}\([^\"', ]*\)[\"']\{0,1\}[[:space:]]*$/\1/p" |
    head -n 1
}
scratch=""
trap '[ -n "$scratch" ] && rm -rf "$scratch"' EXIT
trap 'exit 2' HUP INT TERM
if printf '%s\n' "$conf" | grep -q -- '-data["'"'"']\{0,1\}:'; then
  scratch=$(mktemp -d) || { echo "cannot make a temporary directory"; exit 2; }
fi
material() {   # a file for key KEY: its path as given, or its -data decoded into the scratch dir
  path=$(field "$1")
  if [ -z "$path" ] && [ -n "$(field "$1-data")" ]; then
    path="$scratch/$1"
    field "$1-data" | base64 -d > "$path" 2>/dev/null || return 1
  fi
  echo "$path"
}
server=$(field server)
[ -n "$server" ] || { echo "no server in $kubeconfig"; exit 2; }
ca=$(material certificate-authority) && cert=$(material client-certificate) && key=$(material client-key) \
  || { echo "cannot decode the certificate data in $kubeconfig"; exit 2; }
token=$(field token)
# Our own user agent: the API server pretty-prints JSON for curl's.
set -- -s -S --max-time 3 -A check_pods_pending_while_running
[ -n "$ca" ] && set -- "$@" --cacert "$ca"
[ -n "$cert" ] && set -- "$@" --cert "$cert"
[ -n "$key" ] && set -- "$@" --key "$key"
url="$server/api/v1/pods?fieldSelector=spec.nodeName%3D$node%2Cstatus.phase%3DPending"
if [ -n "$token" ]; then
  pods=$(printf 'header = "Authorization: Bearer %s"\n' "$token" | curl -K - "$@" "$url" 2>&1)
else
  pods=$(curl "$@" "$url" 2>&1)
fi || { echo "cannot list this node's pods: $(printf '%s\n' "$pods" | head -n 1)"; exit 2; }
printf '%s' "$pods" | grep -q '"kind": *"PodList"' \
  || { echo "the API server did not list pods: $(printf '%s' "$pods" | tr -s ' \n' ' ' | cut -c1-100)"; exit 2; }
# One pod per line; a pod's own uid comes first in it (metadata.uid precedes
# its owners'); pods with a container or init container the API knows to be
# running are left out.
pending=$(printf '%s' "$pods" | tr -d '\n' |
  sed 's/,[[:space:]]*{[[:space:]]*"metadata":/\
{"metadata":/g' |
  while IFS= read -r item || [ -n "$item" ]; do
    case "$item" in *'"running":'*|*'"running" :'*|*'"running": '*) continue ;; esac
    printf '%s\n' "$item" | grep -o '"uid": *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/'
  done)
running=$(docker ps --filter label=io.kubernetes.docker.type=container --format '{{.ID}}' 2>&1) \
  || { echo "cannot list containers: $(printf '%s\n' "$running" | head -n 1)"; exit 2; }
now=$(date +%s)
trailing=0 longest=0 total=0
if [ -n "$pending" ] && [ -n "$running" ]; then
  # shellcheck disable=SC2086
  started=$(docker inspect -f '{{index .Config.Labels "io.kubernetes.pod.uid"}} {{.State.StartedAt}}' $running \
    2>/dev/null)
  for uid in $pending; do
    stamp=$(printf '%s\n' "$started" | grep "^$uid " | cut -d' ' -f2 | sort | head -n 1)
    [ -n "$stamp" ] || continue
    since=$(date -d "$stamp" +%s 2>/dev/null) || continue
    age=$((now - since))
    total=$((total + 1))
    if [ "$age" -ge "$wait_s" ]; then
      trailing=$((trailing + 1))
      [ "$age" -gt "$longest" ] && longest=$age
    fi
  done
fi
if [ "$trailing" -ge "$min_pods" ]; then
  echo "$trailing pods Pending in the API server, which knows of no running container of theirs, while docker has run one for ${wait_s} s or more (longest $longest s): kubelet's status updates trail the runtime (kube-api-qps/burst too low?)"
  exit 1
fi
echo "$total pods Pending in the API server with running containers it does not know of, $trailing of them for ${wait_s} s or more"
exit 0
