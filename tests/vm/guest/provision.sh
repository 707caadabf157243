#!/bin/bash
# Runs chrooted in the new guest root while the image is built (build-image.sh): the test
# runner and its unit, the Python venv, the marker that tests/vm/conftest.py looks for.
set -euo pipefail
guest=/tmp/guest

echo ociish-vm >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 ociish-vm\n' >/etc/hosts
echo '/dev/vda / ext4 defaults 0 1' >/etc/fstab
passwd -d root >/dev/null  # a root login on the serial console, for debugging a guest by hand
: >/etc/machine-id  # systemd makes one at boot

# The guest test suite's marker: tests/vm is collected only where this exists.
echo "ociish test guest: Debian $(cat /etc/debian_version), systemd, cgroup v2" >/etc/ociish-test-vm

python3 -m venv /opt/ociish-venv
/opt/ociish-venv/bin/pip install -q --no-index --find-links /tmp/wheels -r /tmp/requirements.txt
# The checkout is copied to /opt/ociish-src at every boot; the venv imports it from there, as an
# editable install would, and `ociish` on PATH runs its bin/ociish.
site=$(/opt/ociish-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo /opt/ociish-src >"$site/ociish-src.pth"
install -m 755 "$guest/ociish" /usr/local/bin/ociish
install -m 755 "$guest/ociish-vm-test" /usr/local/sbin/ociish-vm-test
install -m 644 "$guest/ociish-vm-test.service" /etc/systemd/system/ociish-vm-test.service
systemctl enable ociish-vm-test.service

# An unprivileged user with lingering (a systemd user instance from boot) and subordinate ids,
# for rootless containers through the delegated cgroup subtree.
useradd --create-home --uid 1000 --shell /bin/bash tester
echo tester:100000:65536 >/etc/subuid
echo tester:100000:65536 >/etc/subgid
mkdir -p /var/lib/systemd/linger
touch /var/lib/systemd/linger/tester

# What only slows the boot under emulation: timers, a getty on a screen nobody sees; the
# container engines' daemons start when a test needs them.
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    getty@tty1.service >/dev/null 2>&1 || true
systemctl disable containerd.service >/dev/null 2>&1 || true

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
