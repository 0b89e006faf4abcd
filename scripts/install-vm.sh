#!/usr/bin/env bash
# Installs what scripts/test-cgroup-v2.sh needs to boot a cgroup v2 guest over this machine's own
# files, and nothing when it is already there (safe to run on every CI run).
#
#   Debian: qemu-system-x86   the emulator (TCG: KVM hangs or crashes on these machines)
#           linux-image-amd64 the generic kernel: it has 9p, which virtme-ng shares the host's
#                             root with (the -cloud-amd64 flavour has not, "Failed to mount
#                             real root")
#           busybox-static    the guest's initramfs tools
#   PyPI:   virtme-ng         `vng`, which boots the kernel over the host's root; pinned, in a
#                             venv of its own so the interpreter the sandbox tests run is not
#                             touched
#
# Only apt and pip download anything. Needs root (apt-get). Override the venv with
# LIVEXEC_VM_VENV. Prints where `vng` is at the end.
set -euo pipefail

VIRTME_NG_VERSION=1.42
VENV=${LIVEXEC_VM_VENV:-/opt/livexec-vm/venv}
APT_PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static)

log() { printf '== install-vm: %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Packages apt may remove to make room, each with why that is acceptable. Any other removal
# stops the script before anything changes.
#   qemu-utils: the machine image ships the 10.0 backport, which cannot be co-installed with
#               Debian 12's qemu-system 7.2; livexec never uses qemu-img / qemu-nbd.
ALLOWED_REMOVALS=(qemu-utils)

if ((${#missing[@]})); then
  log "apt: installing ${missing[*]}"
  apt-get update -q
  removals=$(apt-get -s install --no-install-recommends "${missing[@]}" | awk '/^Remv /{print $2}')
  for r in $removals; do
    if [[ " ${ALLOWED_REMOVALS[*]} " == *" $r "* ]]; then
      log "apt: this removes $r (allowed, see ALLOWED_REMOVALS)"
    else
      echo "install-vm: installing ${missing[*]} would remove $r; refusing" >&2
      exit 1
    fi
  done
  # No recommends: they would add a bootloader, firmware and a desktop's worth of qemu UI
  # libraries the headless guest never uses. INITRD=No (read by the kernel's initramfs-tools
  # hook): virtme-ng builds the guest's initramfs itself, and Debian's took 84 of the 117 s
  # this step took (generated twice, by the hook and by a trigger).
  DEBIAN_FRONTEND=noninteractive INITRD=No \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "apt: ${APT_PACKAGES[*]} already installed"
fi

if ! compgen -G '/boot/vmlinuz-*-amd64' >/dev/null; then
  echo "install-vm: no /boot/vmlinuz-*-amd64 after installing linux-image-amd64" >&2
  exit 1
fi

installed=""
if [[ -x $VENV/bin/python ]]; then
  installed=$("$VENV/bin/python" -m pip show virtme-ng 2>/dev/null | sed -n 's/^Version: //p')
fi
if [[ $installed == "$VIRTME_NG_VERSION" ]]; then
  log "pip: virtme-ng $VIRTME_NG_VERSION already in $VENV"
else
  log "pip: installing virtme-ng==$VIRTME_NG_VERSION into $VENV (had: ${installed:-none})"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "virtme-ng==$VIRTME_NG_VERSION"
fi
"$VENV/bin/vng" --version
log "vng is $VENV/bin/vng"
