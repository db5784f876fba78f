#!/bin/sh
# Runs inside a container made from a debootstrapped root filesystem and turns
# it into a node image: the target's pinned packages, held, services set up for
# a node container whose PID 1 is systemd.
# Inputs (environment): NODELAB_SOURCES (sources.list text), NODELAB_PACKAGES
# (apt install arguments, "name=version" allowed), NODELAB_HOLD (package names).
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
printf '%s\n' "$NODELAB_SOURCES" > /etc/apt/sources.list
# No service may start while the image is built.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
apt-get -q update
# shellcheck disable=SC2086
apt-get -q install -y --no-install-recommends --allow-downgrades $NODELAB_PACKAGES
[ -z "${NODELAB_HOLD:-}" ] || apt-mark hold $NODELAB_HOLD
rm -f /usr/sbin/policy-rc.d
apt-get clean
rm -rf /var/lib/apt/lists/*

# A node container has no consoles, no udev hardware and no clock to set.
for unit in getty.target console-getty.service systemd-udevd.service \
            systemd-udev-trigger.service systemd-timesyncd.service \
            systemd-modules-load.service sys-kernel-config.mount \
            sys-kernel-debug.mount apt-daily.timer apt-daily-upgrade.timer \
            systemd-logind.service; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done
systemctl enable docker.service containerd.service dbus.service 2>/dev/null || true
echo 'ForwardToConsole=no' >> /etc/systemd/journald.conf
: > /etc/machine-id
mkdir -p /etc/docker /etc/kubernetes /var/lib/kubelet
# Fail loudly if what was asked for is not what got installed.
dpkg-query -W -f='${Package}=${Version}\n' systemd docker.io containerd runc gdb
