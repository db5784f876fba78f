#!/bin/sh
# PID 1 of a node container until it execs systemd. Learned from kind's
# entrypoint: make cgroups writable and consistent for systemd and kubelet,
# then install the sandbox adapters the lab asked for (NODELAB_ADAPTERS).
set -eu

# Docker mounts /sys/fs/cgroup read-only and, on hosts that mount cpu and
# cpuacct apart, systemd 229 fails to mount "cpu,cpuacct" itself. Mount every
# v1 hierarchy this container is in, read-write, on a fresh tmpfs.
if grep -q ' /sys/fs/cgroup ' /proc/self/mountinfo; then
  for m in $(awk '$5 ~ "^/sys/fs/cgroup/" {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  umount /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
fi
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
while IFS=: read -r _ controllers _; do
  case "$controllers" in
    "") dir=unified; opts=; fstype=cgroup2 ;;
    name=*) dir=${controllers#name=}; opts="none,$controllers"; fstype=cgroup ;;
    *) dir=$controllers; opts=$controllers; fstype=cgroup ;;
  esac
  mkdir -p "/sys/fs/cgroup/$dir"
  if [ "$fstype" = cgroup2 ]; then
    mount -t cgroup2 cgroup2 "/sys/fs/cgroup/$dir" 2>/dev/null || rmdir "/sys/fs/cgroup/$dir"
  else
    mount -t cgroup -o "$opts" cgroup "/sys/fs/cgroup/$dir"
  fi
  # "cpu" and "cpuacct" apart: give systemd the combined names it expects.
  case "$controllers" in
    *,*) for c in $(echo "$controllers" | tr , ' '); do ln -sfn "$controllers" "/sys/fs/cgroup/$c"; done ;;
  esac
done < /proc/self/cgroup
[ -e /sys/fs/cgroup/cpu ] && [ -e /sys/fs/cgroup/cpuacct ] && [ ! -e /sys/fs/cgroup/cpu,cpuacct ] \
  && ln -s cpu /sys/fs/cgroup/cpu,cpuacct
mount -o remount,ro /sys/fs/cgroup 2>/dev/null || true

# /dev/kmsg is bind-mounted by the lab; kubelet's OOM watcher reads it.
mkdir -p /run/nodelab /etc/docker
adapters=" ${NODELAB_ADAPTERS:-} "
oom_line=
runtime_lines=
case "$adapters" in *" oom-score "*)
  # Without CAP_SYS_RESOURCE nothing may lower oom_score_adj below 0.
  for unit in docker containerd; do
    mkdir -p "/run/systemd/system/$unit.service.d"
    printf '[Service]\nOOMScoreAdjust=0\n' > "/run/systemd/system/$unit.service.d/nodelab-oom-score.conf"
  done
  oom_line='"oom-score-adjust": 0,'
  runtime_lines='"runtimes": {"nodelab-runc": {"path": "/usr/local/lib/nodelab/nodelab-runc-oom-adapter"}}, "default-runtime": "nodelab-runc",'
  ;;
esac
case "$adapters" in *" containerd-userns "*)
  mkdir -p /run/systemd/system/containerd.service.d
  printf '[Service]\nExecStart=\nExecStart=/bin/sh /usr/local/lib/nodelab/nodelab-containerd-userns-adapter\n' \
    > /run/systemd/system/containerd.service.d/nodelab-userns.conf
  ;;
esac
cat > /etc/docker/daemon.json <<JSON
{
  $oom_line
  $runtime_lines
  "exec-opts": ["native.cgroupdriver=systemd"],
  "storage-driver": "overlay2"
}
JSON
echo "${NODELAB_ADAPTERS:-}" > /run/nodelab/adapters
exec /sbin/init "$@"
