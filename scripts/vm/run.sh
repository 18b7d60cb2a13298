#!/usr/bin/env bash
# `make vm-test`: runs the in-guest tests on the test machine of DESIGN §6 — a QEMU guest
# (Debian's 6.12 kernel, a busybox initramfs) with an FDP NVMe drive and an NVDIMM — booting it
# once per phase on the same disk images: phase 1 starts from blank media, sets up DAX and runs
# its tests, then the guest is powered off hard; phase 2 boots on what phase 1 left.
#
# Steps: install what is missing (scripts/vm/deps.sh; kernel .deb cached in .cache/vm), unpack
# the kernel and its modules (cached), build the test binaries (go test -c, static), pack the
# initramfs (busybox, scripts/vm/init.sh as /init, the tests, bin/kvresp, ndctl and mke2fs with
# their libraries), then boot each phase with scripts/vm/qemu.sh. Any failure — a missing tool,
# a device that does not appear, a test that fails, a guest that hangs — makes it exit non-zero;
# nothing is skipped. bin/kvresp comes from `make build` (make vm-test builds it first).
#
# VM_PHASES (default "1 2") picks the boots; keep 1, as every run starts from blank media.
# VM_TIMEOUT (seconds per boot, default 600) and VM_ACCEL (kvm or tcg) are passed to qemu.sh.
# The guest's consoles are in .cache/vm/run/console-phase*.log.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The in-guest test runs, one a line: package, phases it runs in (comma-separated), and the
# -test.run pattern (no spaces). A package that is not in the tree yet is left out with a note.
# To add one, add a line, e.g.
#   ./fdp  1  ^TestVM
#   ./rawblock  1,2  ^TestVMCrash
# In the guest the binary runs as root in /src/PKG (with a copy of PKG/testdata), in table order,
# with KVRESP_VM=1, KVRESP_VM_PHASE=N, KVRESP_TEST_NVME_CTRL=/dev/nvme0,
# KVRESP_TEST_NVME_NG=/dev/ng0n1, KVRESP_TEST_NVME_BLK=/dev/nvme0n1, KVRESP_TEST_PMEM_DIR=/mnt/pmem
# (ext4 mounted -o dax), KVRESP_TEST_SERVER=/bin/kvresp, CI when the host has it, and TMPDIR=/tmp
# on ext4 on a RAM disk. The NVMe namespace and the NVDIMM keep what earlier runs wrote.
# Order matters on the shared namespace: raw writes first (fdp uses its last 16 MiB), then the
# server (it formats the namespace), then the rawblock log whose phase 2 checks what its phase 1
# left, so nothing may write the namespace after it.
VM_TESTS='
./fdp  1  ^TestVM
./internal/uring  1  .
./cmd/kvresp  1  ^TestVM
./rawblock  1,2  ^TestVM
./dax  1,2  ^TestVM
'
# Boots of one run. Phase 2 runs even with no test of its own: it proves that the DAX namespace
# and filesystem survive the power cut, which later phases' tests rely on.
VM_PHASES=${VM_PHASES:-1 2}
# Modules to load, in this order, one a line with any parameters; their dependencies (modinfo
# "depends=") are added ahead of them. One that is built in or absent is left out with a note:
# the guest then checks that the devices appear anyway. brd is a RAM disk for the guest's /tmp
# (ext4 on it): tmpfs takes O_DIRECT I/O at any alignment since Linux 6.6, and the tests expect
# a disk's rules.
VM_MODULES='
nvme-auth
nvme-core
nvme
libnvdimm
nd_btt
nd_pmem
nfit
crc16
crc32c_generic
libcrc32c
mbcache
jbd2
ext4
brd rd_nr=1 rd_size=262144
'

cache=.cache/vm
run=$cache/run
mkdir -p "$cache"
[ -f "$cache/.gitignore" ] || echo '*' >"$cache/.gitignore"

start=$SECONDS
bash scripts/vm/deps.sh "$cache"

if [ ! -x bin/kvresp ]; then
	echo "vm: bin/kvresp is missing; run 'make vm-test' (it builds it) or 'make build' first" >&2
	exit 1
fi

# --- The kernel package, unpacked once. ---
deb=$(find "$cache" -maxdepth 1 -name 'linux-image-6.12*_amd64.deb' | sort -V | tail -n 1)
kdir=$cache/kernel/$(basename "$deb" .deb)
if [ ! -f "$kdir/.done" ]; then
	echo "vm: unpacking $(basename "$deb")"
	rm -rf "$kdir"
	mkdir -p "$kdir"
	dpkg-deb -x "$deb" "$kdir"
	touch "$kdir/.done"
fi
kernel=$(find "$kdir/boot" -name 'vmlinuz-*' | head -n 1)
moddir=$(find "$kdir/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)

# --- Initramfs. ---
rm -rf "$run"
root=$run/initramfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/kvresp-vm,lib/modules,proc,sys,dev,tmp,root,src,mnt/pmem}

# Modules, decompressed, and the order the guest loads them in.
# modpath NAME prints the module file of NAME ('-' and '_' are the same in module names).
modpath() { find "$moddir/kernel" -name "$1.ko*" -o -name "${1//-/_}.ko*" -o -name "${1//_/-}.ko*" | head -n 1; }
order=()
# add NAME appends NAME's dependencies, then NAME, to order, each once.
add() {
	local m=$1 f dep deps
	for dep in "${order[@]}"; do [ "$dep" = "$m" ] && return 0; done
	f=$(modpath "$m")
	if [ -z "$f" ]; then
		if grep -qE "/${m//[-_]/[-_]}\.ko\$" "$moddir/modules.builtin"; then
			echo "vm: module $m is built into the kernel"
		else
			echo "vm: module $m is not in $(basename "$deb"); the guest checks its devices anyway"
		fi
		return 0
	fi
	case "$f" in
	*.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
	*) cp "$f" "$root/lib/modules/$m.ko" ;;
	esac
	deps=$(tr '\0' '\n' <"$root/lib/modules/$m.ko" | sed -n 's/^depends=//p')
	for dep in ${deps//,/ }; do add "$dep"; done
	order+=("$m")
}
declare -A params=()
while read -r m p; do
	[ -n "$m" ] || continue
	params[$m]=$p
	add "$m"
done <<<"$VM_MODULES"
for m in "${order[@]}"; do
	echo "/lib/modules/$m.ko ${params[$m]:-}"
done >"$root/etc/kvresp-vm/modules"

# Test binaries: static, so they run without a C library in the guest.
: >"$root/etc/kvresp-vm/tests"
while read -r pkg phases pattern; do
	[ -n "$pkg" ] || continue
	if ! compgen -G "$pkg/*_test.go" >/dev/null; then
		echo "vm: $pkg has no tests in this tree yet; not run"
		continue
	fi
	p=${pkg#./}
	mkdir -p "$root/src/$p"
	echo "vm: go test -c $pkg"
	CGO_ENABLED=0 go test -c -o "$root/src/$p/${p##*/}.test" "$pkg"
	[ -d "$pkg/testdata" ] && cp -r "$pkg/testdata" "$root/src/$p/"
	echo "$p $phases $pattern" >>"$root/etc/kvresp-vm/tests"
done <<<"$VM_TESTS"

cp /bin/busybox "$root/bin/busybox"
/bin/busybox --list-full | while read -r applet; do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 scripts/vm/init.sh "$root/init"
cp bin/kvresp "$root/bin/kvresp"

# ndctl and e2fsprogs' mke2fs (renamed: busybox's applet would win) with their libraries.
copy_elf() {
	local bin=$1 dest=$2 lib
	cp -L "$bin" "$root$dest"
	for lib in $(ldd "$bin" | grep -oE '/[^ ]+'); do
		mkdir -p "$root$(dirname "$lib")"
		[ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
	done
}
copy_elf /usr/bin/ndctl /usr/bin/ndctl
copy_elf /usr/sbin/mke2fs /usr/sbin/kvresp-mke2fs
cp /etc/mke2fs.conf "$root/etc/mke2fs.conf"

(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$run/initrd.gz"
echo "vm: initramfs $(du -h "$run/initrd.gz" | cut -f1) (prepared in $((SECONDS - start))s)"

# --- Boots, on one set of disk images. ---
failed=0
for phase in $VM_PHASES; do
	if ! bash scripts/vm/qemu.sh "$kernel" "$run/initrd.gz" "$run" "$phase"; then
		failed=1
		break # later phases need what this one left
	fi
done
if [ "$failed" -ne 0 ]; then
	echo "vm-test: FAIL after $((SECONDS - start))s" >&2
	exit 1
fi
echo "vm-test: PASS, phases $VM_PHASES, in $((SECONDS - start))s"
