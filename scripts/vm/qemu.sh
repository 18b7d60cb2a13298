#!/usr/bin/env bash
# Boots the test machine once: the one place that knows its QEMU command line (DESIGN §6).
#
#   scripts/vm/qemu.sh KERNEL INITRD RUNDIR PHASE
#
# RUNDIR holds the disk images, which every phase of a run shares: nvm.img (the FDP NVMe
# namespace) and pmem.img (the NVDIMM); qemu.sh creates them when they are missing, so phase 1
# of a fresh RUNDIR starts from blank media and later phases boot on what it left. The guest gets
# kvresp.phase=PHASE on its command line and powers off when its tests are done; the console is
# copied to RUNDIR/console-phasePHASE.log. The exit code is 0 only when the console ends with
# KVRESP-VM-RESULT: PASS; a timeout, a panic or a missing device is a failure, with the last
# console lines printed.
#
# VM_TIMEOUT (seconds, default 600) bounds the boot; VM_ACCEL (kvm or tcg) overrides the choice
# of accelerator, which is KVM only where the CPU offers virtualisation to this machine.
set -euo pipefail

kernel=${1:?usage: qemu.sh KERNEL INITRD RUNDIR PHASE}
initrd=${2:?usage: qemu.sh KERNEL INITRD RUNDIR PHASE}
rundir=${3:?usage: qemu.sh KERNEL INITRD RUNDIR PHASE}
phase=${4:?usage: qemu.sh KERNEL INITRD RUNDIR PHASE}
timeout_s=${VM_TIMEOUT:-600}

NVM_SIZE=1G
# 512 MiB of persistent memory plus the 128 KiB label area, so the region stays 16 MiB-aligned.
PMEM_SIZE=537001984

mkdir -p "$rundir"
[ -f "$rundir/nvm.img" ] || truncate -s "$NVM_SIZE" "$rundir/nvm.img"
[ -f "$rundir/pmem.img" ] || truncate -s "$PMEM_SIZE" "$rundir/pmem.img"

accel=${VM_ACCEL:-}
if [ -z "$accel" ]; then
	# /dev/kvm can exist where the CPU has no virtualisation for us (nested guests): QEMU then
	# fails inside the guest, so KVM is used only when the CPU flags say it works.
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
		accel=kvm
	fi
fi

append="console=ttyS0 quiet panic=-1 kvresp.phase=$phase kvresp.testtimeout=$((timeout_s > 120 ? timeout_s - 60 : timeout_s))s"
[ -n "${CI:-}" ] && append+=" kvresp.ci=1"

args=(
	-accel "$accel"
	-M q35,nvdimm=on -m 1G,slots=2,maxmem=4G -smp 2
	-nodefaults -display none -serial stdio -no-reboot
	-kernel "$kernel" -initrd "$initrd" -append "$append"
	-device nvme-subsys,id=subsys0,nqn=subsys0,fdp=on,fdp.runs=64M,fdp.nrg=1,fdp.nruh=8
	-device nvme,id=nvme0,serial=deadbeef,subsys=subsys0
	-drive id=nvm,file="$rundir/nvm.img",format=raw,if=none,discard=unmap
	-device nvme-ns,drive=nvm,nsid=1,fdp.ruhs=0-7
	-object memory-backend-file,id=mem1,share=on,mem-path="$rundir/pmem.img",size=$PMEM_SIZE
	-device nvdimm,id=nv1,memdev=mem1,label-size=128K
)
# Under TCG, "max" offers CLWB and CLFLUSHOPT, so the DAX tier's write-back path runs with the
# instruction it picks on current CPUs rather than QEMU's default model's CLFLUSH.
if [ "$accel" = kvm ]; then args+=(-cpu host); else args+=(-cpu max); fi

log="$rundir/console-phase$phase.log"
echo "vm: phase $phase: booting ($accel, timeout ${timeout_s}s), console in $log"
start=$SECONDS
set +e
timeout -k 10 "$timeout_s" qemu-system-x86_64 "${args[@]}" </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
took=$((SECONDS - start))

# result WORD reports whether the guest's last word was WORD (the serial console ends lines
# with CR LF).
result() { grep -qE "^KVRESP-VM-RESULT: $1"$'\r?$' "$log"; }
if result PASS && ! result FAIL; then
	echo "vm: phase $phase: PASS in ${took}s"
	exit 0
fi
why="the guest reported FAIL"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	why="timed out after ${timeout_s}s"
elif ! result FAIL; then
	why="no result from the guest (QEMU exit $rc: a panic, a crash or an early power-off)"
fi
echo "vm: phase $phase: FAIL in ${took}s: $why. Last 60 console lines ($log):" >&2
tail -n 60 "$log" | tr -d '\r' | sed 's/^/  | /' >&2
exit 1
