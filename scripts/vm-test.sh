#!/usr/bin/env bash
# vm-test.sh: prove the cgroup v2 backend for real. Boots Debian's stock cloud kernel
# (downloaded with apt-get download and unpacked, never installed) under qemu with software
# emulation and a busybox initramfs, mounts a pure cgroup2 hierarchy, and runs plugjail's
# own test binaries there: tests/cgroup.rs as root and as uid 65534 in a delegated subtree,
# and `plugjail exec` against memory, pids, cpu and io limits (scripts/vm/guest-tests.sh).
#
# usage: scripts/vm-test.sh            (as root on a fresh Debian 12 machine is fine)
# env:   VM_WORK     work dir (default target/vm-test; the kernel download is cached there)
#        VM_MEM      guest MiB (1024)      VM_SMP  guest cpus (2)
#        VM_TIMEOUT  seconds before the guest is killed (480)
#        VM_ACCEL    tcg (default) or kvm: this machine's /dev/kvm is a PVM device that
#                    cannot boot a stock kernel, so software emulation is the default
#        CARGO_PROFILE  dev (default) or release
# exit:  0 iff the guest reports "VM-TEST-EXIT 0"; the console log is $VM_WORK/console.log
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM=$ROOT/scripts/vm
W=${VM_WORK:-$ROOT/target/vm-test}
MEM=${VM_MEM:-1024}
SMP=${VM_SMP:-2}
TIMEOUT=${VM_TIMEOUT:-480}
ACCEL=${VM_ACCEL:-tcg}
PROFILE=${CARGO_PROFILE:-dev}
T0=$(date +%s%N)
log() { echo "[vm-test +$((($(date +%s%N) - T0) / 1000000))ms] $*"; }
die() { log "error: $*"; exit 1; }
mkdir -p "$W"

# 1. Host tools, from Debian's archive when missing.
pkgs=()
command -v qemu-system-x86_64 >/dev/null || pkgs+=(qemu-system-x86)
command -v cpio >/dev/null || pkgs+=(cpio)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx switch_root ||
  pkgs+=(busybox-static)
command -v cc >/dev/null || pkgs+=(gcc libc6-dev)
command -v mkfs.ext4 >/dev/null || pkgs+=(e2fsprogs)
if ((${#pkgs[@]})); then
  [ "$(id -u)" = 0 ] || die "please install: ${pkgs[*]}"
  log "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >"$W/apt.log" 2>&1 ||
    { apt-get update -q >>"$W/apt.log" 2>&1 &&
      apt-get install -y -q --no-install-recommends "${pkgs[@]}" >>"$W/apt.log" 2>&1; } ||
    die "apt-get install failed (see $W/apt.log)"
fi
file /bin/busybox 2>/dev/null | grep -q 'dynamically' && die "/bin/busybox is not static"
log "host tools ready"

# 2. The kernel: the image package the cloud metapackage depends on, unpacked (no
#    maintainer scripts run), and the virtio modules the disk needs.
KDIR=$W/kernel
if ! ls "$KDIR"/boot/vmlinuz-* >/dev/null 2>&1; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  [ -n "$pkg" ] || { apt-get update -q >/dev/null && pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}'); }
  [ -n "$pkg" ] || die "no linux-image-cloud-amd64 in the apt sources"
  log "downloading $pkg"
  rm -rf "$KDIR" && mkdir -p "$KDIR"
  (cd "$KDIR" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
  dpkg-deb --fsys-tarfile "$KDIR/${pkg}"_*.deb |
    tar -x -C "$KDIR" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/virtio/*' \
      './lib/modules/*/kernel/drivers/block/virtio_blk.ko'
  rm -f "$KDIR"/*.deb
fi
KERNEL=$(ls "$KDIR"/boot/vmlinuz-* | head -1)
log "kernel ${KERNEL##*/vmlinuz-}"

# 3. What runs in the guest: the cgroup test binary, plugjail and its stub, static helpers.
cd "$ROOT"
cargo_flags=()
[ "$PROFILE" = release ] && cargo_flags+=(--release)
log "building (cargo ${cargo_flags[*]:-dev})"
cargo build -q "${cargo_flags[@]}" --bins
TEST_BIN=$(cargo test -q "${cargo_flags[@]}" --test cgroup --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\/deps\/cgroup-[0-9a-f]*\)".*/\1/p' | tail -1)
[ -x "$TEST_BIN" ] || die "no cgroup test executable from cargo"
BIN_DIR=$ROOT/target/$([ "$PROFILE" = release ] && echo release || echo debug)
for c in runas hog pause; do
  [ "$W/$c" -nt "$VM/$c.c" ] || cc -O2 -static -Wall -o "$W/$c" "$VM/$c.c"
done
# Plugins for the plugin-mode checks (the serve gate on the guest's kernel).
mkdir -p "$W/plugins"
for p in examples/plugins/hello tests/plugins/escape tests/plugins/serve_attack tests/plugins/spin; do
  so=$W/plugins/$(basename "$p").so
  [ "$so" -nt "$ROOT/$p.cpp" ] || c++ -std=c++17 -O1 -shared -fPIC -I "$ROOT/include" \
    -o "$so" "$ROOT/$p.cpp"
done

# 4. The initramfs: busybox (merged /usr), the modules in load order, the tests with the
#    shared libraries they need (at the same paths), the guest scripts and profiles.
R=$W/root
rm -rf "$R"
mkdir -p "$R"/{usr/bin,usr/lib,usr/lib64,proc,sys,dev,tmp,newroot,mods,test/profiles,etc}
for l in bin sbin; do ln -s usr/bin "$R/$l"; done
ln -s usr/lib "$R/lib"
ln -s usr/lib64 "$R/lib64"
cp /bin/busybox "$R/usr/bin/"
for a in $(/bin/busybox --list); do [ -e "$R/usr/bin/$a" ] || ln -s busybox "$R/usr/bin/$a"; done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
: >"$R/mods/order"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  ko=$(find "$KDIR/lib/modules" -name "$m.ko" | head -1)
  [ -n "$ko" ] || continue
  cp "$ko" "$R/mods/" && echo "$m" >>"$R/mods/order"
done
install -m 755 "$TEST_BIN" "$R/test/cgroup-tests"
install -m 755 "$W/runas" "$W/hog" "$W/pause" "$VM/guest-tests.sh" "$R/test/"
for b in plugjail plugjail-stub; do
  [ -x "$BIN_DIR/$b" ] && install -m 755 "$BIN_DIR/$b" "$R/test/"
done
install -m 644 "$ROOT/profiles/ci-tests.yaml" "$ROOT/profiles/default.yaml" \
  "$VM"/profiles/*.yaml "$R/test/profiles/"
mkdir -p "$R/test/plugins"
install -m 644 "$W"/plugins/*.so "$R/test/plugins/"
for f in "$R"/test/cgroup-tests "$R"/test/plugjail* "$R"/test/plugins/*.so; do
  for lib in $(ldd "$f" 2>/dev/null | grep -oE '/[^ ]+' || true); do
    [ -e "$R$lib" ] && continue
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done
done
install -m 755 "$VM/init" "$VM/init2" "$R/"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) >"$W/initramfs.cpio.gz"
# The scratch disk for O_DIRECT io tests (the guest's root is a tmpfs: no block device).
rm -f "$W/disk.img"
truncate -s 256M "$W/disk.img"
mkfs.ext4 -q -F "$W/disk.img"
log "initramfs $(du -k "$W/initramfs.cpio.gz" | cut -f1) KiB; booting ($ACCEL, ${MEM} MiB, $SMP cpus)"

# 5. Boot. cgroup_no_v1=all: a pure v2 system, whatever the kernel's defaults.
cpu=max
[ "$ACCEL" = kvm ] && cpu=host
set +e
timeout "$TIMEOUT" qemu-system-x86_64 -accel "$ACCEL" -cpu "$cpu" -m "$MEM" -smp "$SMP" \
  -nodefaults -no-reboot -display none -serial stdio \
  -kernel "$KERNEL" -initrd "$W/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet cgroup_no_v1=all" \
  -drive "file=$W/disk.img,if=virtio,format=raw,cache=unsafe" </dev/null 2>&1 |
  tr -d '\r' | tee "$W/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
[ "$qemu_rc" = 124 ] && log "the guest did not finish within ${TIMEOUT}s"
if grep -qx 'VM-TEST-EXIT 0' "$W/console.log"; then
  log "PASS (console: $W/console.log)"
else
  log "FAIL (console: $W/console.log)"
  exit 1
fi
