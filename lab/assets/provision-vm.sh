#!/bin/sh
# Runs inside a container made from a target's node image (provision-node.sh)
# and turns it into the root filesystem of a VM node: the distribution's own
# kernel, an SSH server the lab reaches with its per-lab key, the boot unit
# that takes the VM's identity from the kernel command line, and back what a
# node container masks but a machine has (udev, module loading).
# Inputs (environment): NODELAB_KERNEL (apt packages of the kernel).
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
apt-get -q update
# shellcheck disable=SC2086
# apparmor: both kernels enable AppArmor, and docker then loads its profile
# with apparmor_parser, as on any Ubuntu 16.04 or Debian 12 machine.
apt-get -q install -y --no-install-recommends $NODELAB_KERNEL openssh-server apparmor
rm -f /usr/sbin/policy-rc.d
apt-get clean
rm -rf /var/lib/apt/lists/*

# A VM has hardware: udev loads its drivers, modules-load.d its extra modules
# (virtio-rng feeds the 4.4 kernel's entropy pool, 9p mounts the lab's files).
for unit in systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
            sys-kernel-config.mount sys-kernel-debug.mount; do
  rm -f "/etc/systemd/system/$unit"
done
printf 'virtio_rng\n9pnet_virtio\n9p\noverlay\nbr_netfilter\n' > /etc/modules-load.d/nodelab.conf

# The 9p shares (the lab's Kubernetes binaries and assets, where a container
# node has them) need 9pnet_virtio loaded first: x-systemd.requires orders them.
# A large msize: kubelet's 110 MB binary pages in over 9p (8 KiB messages by
# default on 4.4) and stays in the guest's page cache (cache=loose: the shares are
# read-only). No entry for /: the kernel mounted it, and an entry makes
# systemd wait for udev to announce /dev/vda (15 s under TCG).
# What the container entrypoint writes at every start, written once here.
mkdir -p /etc/docker /opt/nodelab/kube /usr/local/lib/nodelab /root/.ssh
cat > /etc/docker/daemon.json <<'JSON'
{
  "exec-opts": ["native.cgroupdriver=systemd"],
  "storage-driver": "overlay2"
}
JSON
cat >> /etc/fstab <<'FSTAB'
kube /opt/nodelab/kube 9p trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro,x-systemd.requires=systemd-modules-load.service 0 0
assets /usr/local/lib/nodelab 9p trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro,x-systemd.requires=systemd-modules-load.service 0 0
FSTAB

# SSH: keys only, no PAM (a PAM session asks logind over the system bus,
# which the cookie scenario breaks on purpose). Host keys are made at first
# boot by nodelab-vm-init, so no two VMs share one: ed25519 only (an RSA key
# takes seconds to make under TCG).
rm -f /etc/ssh/ssh_host_*
# sshd takes the first value of a keyword: drop the stock ones before ours.
sed -i -E '/^[[:space:]]*(HostKey|UsePAM|PasswordAuthentication|ChallengeResponseAuthentication|PermitRootLogin|UseDNS)[[:space:]]/d' \
  /etc/ssh/sshd_config
cat >> /etc/ssh/sshd_config <<'SSHD'
HostKey /etc/ssh/ssh_host_ed25519_key
UsePAM no
PasswordAuthentication no
ChallengeResponseAuthentication no
PermitRootLogin prohibit-password
UseDNS no
SSHD
install -m 0755 /nodelab-vm-init /usr/local/sbin/nodelab-vm-init
rm -f /nodelab-vm-init
cat > /etc/systemd/system/nodelab-vm-init.service <<'UNIT'
[Unit]
Description=nodelab VM identity (address, hostname, SSH keys) from the kernel command line
DefaultDependencies=no
After=local-fs.target systemd-udev-settle.service
Before=network.target ssh.service docker.service containerd.service
Wants=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/nodelab-vm-init
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable nodelab-vm-init.service ssh.service
ls /boot
