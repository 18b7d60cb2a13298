#!/bin/sh
# /init of the test machine's initramfs (PID 1, busybox sh), packed by scripts/vm/run.sh.
#
# It mounts the kernel's filesystems, loads the modules listed in /etc/kvresp-vm/modules ("path
# [parameters]" a line), waits for the NVMe and NVDIMM devices, puts /tmp on a RAM disk, sets up
# DAX on /dev/pmem0 (phase 1: fsdax namespace and ext4; later phases only mount it), then runs
# each test binary of /etc/kvresp-vm/tests whose phases include this boot's (kvresp.phase= on
# the kernel command line). It prints
# KVRESP-VM-BEGIN/END around each and KVRESP-VM-RESULT: PASS or FAIL last, then powers off at
# once, without syncing or unmounting: to the disks it looks like a power cut.
#
# A line of /etc/kvresp-vm/tests is "PKG PHASES PATTERN": the binary is /src/PKG/NAME.test (NAME
# is PKG's last element, as go test -c names it), run in /src/PKG (where its testdata is) with
# -test.v -test.run PATTERN. PHASES is a comma-separated list such as 1 or 1,2.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "kvresp-vm: [$(cut -d' ' -f1 /proc/uptime)s] $*"; }

# finish prints the result and powers off. The console is drained first (stty sets the modes it
# read back with TCSADRAIN), so the last line reaches the host before the machine stops.
finish() {
	echo "KVRESP-VM-RESULT: $1"
	stty -F /dev/console "$(stty -F /dev/console -g)" 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 10
	poweroff -f
}

fail() {
	say "FAIL: $*"
	finish FAIL
}

arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
phase=$(arg kvresp.phase)
testtimeout=$(arg kvresp.testtimeout)
[ -n "$phase" ] || fail "no kvresp.phase= on the kernel command line"
[ -n "$(arg kvresp.ci)" ] && export CI=true
say "phase $phase, kernel $(uname -r)"

while read -r mod params; do
	# A module that is built in, or already pulled in, fails to load; the device checks below
	# decide whether something is really missing.
	# shellcheck disable=SC2086 # params is a list of name=value words
	out=$(insmod "$mod" $params 2>&1) || say "insmod $mod: $out"
done </etc/kvresp-vm/modules

# wait_dev waits up to a minute for a device node (a loaded host slows the emulated guest).
wait_dev() {
	i=0
	while [ ! -e "$1" ]; do
		i=$((i + 1))
		[ "$i" -gt 600 ] && return 1
		sleep 0.1
	done
}
say "modules loaded"
for dev in /dev/nvme0 /dev/nvme0n1 /dev/ng0n1 /dev/pmem0 /dev/ram0; do
	wait_dev "$dev" || fail "$dev did not appear (/dev has: $(ls /dev | grep -E '^(nvme|ng|pmem|ram|nd)' | tr '\n' ' '))"
done

# /tmp is ext4 on a RAM disk, made afresh each boot: tmpfs takes O_DIRECT I/O at any alignment
# (Linux 6.6 on), and the tests expect a disk's rules.
kvresp-mke2fs -q -t ext4 -F /dev/ram0 && mount -t ext4 /dev/ram0 /tmp || fail "ext4 on /dev/ram0 for /tmp"
say "devices ready, /tmp mounted"

# DAX: the NVDIMM starts as a raw namespace, which cannot DAX; the fsdax namespace and the
# filesystem live in the backing file, so later boots only mount. mke2fs is e2fsprogs' under
# another name: busybox runs its own mke2fs applet ahead of PATH.
if [ "$phase" = 1 ]; then
	ndctl create-namespace -f -e namespace0.0 -m fsdax -a 2M >/tmp/ndctl.out 2>&1 ||
		fail "ndctl create-namespace: $(cat /tmp/ndctl.out)"
	wait_dev /dev/pmem0 || fail "/dev/pmem0 did not come back after ndctl create-namespace"
	kvresp-mke2fs -q -t ext4 -b 4096 -F /dev/pmem0 || fail "mke2fs -t ext4 /dev/pmem0"
fi
mount -t ext4 -o dax /dev/pmem0 /mnt/pmem || fail "mount -o dax /dev/pmem0"
grep -q '^/dev/pmem0 /mnt/pmem ext4 .*dax' /proc/mounts ||
	fail "/dev/pmem0 is mounted without DAX: $(grep pmem0 /proc/mounts)"
say "DAX: $(grep pmem0 /proc/mounts)"

# The server tests talk to kvresp over loopback, which nothing else brings up in an initramfs.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || fail "cannot bring up the loopback interface"

export HOME=/root TMPDIR=/tmp
export KVRESP_VM=1 KVRESP_VM_PHASE="$phase"
export KVRESP_TEST_NVME_CTRL=/dev/nvme0 KVRESP_TEST_NVME_NG=/dev/ng0n1 KVRESP_TEST_NVME_BLK=/dev/nvme0n1
export KVRESP_TEST_PMEM_DIR=/mnt/pmem
export KVRESP_TEST_SERVER=/bin/kvresp

result=PASS
ran=0
while read -r pkg phases pattern; do
	case "$pkg" in '' | '#'*) continue ;; esac
	case ",$phases," in *",$phase,"*) ;; *) continue ;; esac
	ran=$((ran + 1))
	say "running $pkg"
	echo "KVRESP-VM-BEGIN $pkg phase $phase -test.run $pattern"
	(cd "/src/$pkg" && "./${pkg##*/}.test" -test.v -test.run "$pattern" ${testtimeout:+-test.timeout "$testtimeout"} </dev/null 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "KVRESP-VM-END $pkg phase $phase: PASS"
	else
		echo "KVRESP-VM-END $pkg phase $phase: FAIL (exit $rc)"
		result=FAIL
	fi
done </etc/kvresp-vm/tests
say "phase $phase: $ran test binaries run"
finish "$result"
