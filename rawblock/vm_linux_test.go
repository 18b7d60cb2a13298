package rawblock

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"kvresp/fdp"
	"kvresp/slab"
)

// Tests of the NVMe passthrough device on the test machine (make vm-test: QEMU with an FDP
// NVMe subsystem of 8 handles and 64 MiB reclaim units, 512-byte blocks, 512 KiB maximum
// transfer). Outside it they skip; inside it (KVRESP_VM=1) a missing device fails them.
//
// Phase 1 formats the namespace, checks placement, deallocation and the FDP statistics
// against what the device wrote, and leaves a log whose manifest entry lists every key it
// holds, synced but not closed (the guest is then powered off). Phase 2, on the next boot,
// recovers the log and finds every key of the manifest exactly.

const (
	vmRegionSize = 64 << 20 // one reclaim unit
	vmManifest   = "vm:manifest"
)

// vmNamespace returns the namespace device and the boot phase, or skips outside the machine.
func vmNamespace(t *testing.T) (string, int) {
	t.Helper()
	if os.Getenv("KVRESP_VM") == "" {
		t.Skip("runs on the test machine (make vm-test)")
	}
	ng := os.Getenv("KVRESP_TEST_NVME_NG")
	if ng == "" {
		t.Fatal("KVRESP_VM is set but KVRESP_TEST_NVME_NG (the namespace device) is not")
	}
	if _, err := os.Stat(ng); err != nil {
		t.Fatalf("the namespace device: %v", err)
	}
	phase, err := strconv.Atoi(os.Getenv("KVRESP_VM_PHASE"))
	if err != nil {
		t.Fatalf("KVRESP_VM_PHASE=%q: %v", os.Getenv("KVRESP_VM_PHASE"), err)
	}
	return ng, phase
}

func vmOpen(t *testing.T, ng string, a *slab.Arena, format bool) (*FileDevice, *Engine) {
	t.Helper()
	d, err := OpenFile(FileOptions{Path: ng, Rings: 2, QueueDepth: 32, Arena: a, Logger: quiet})
	if err != nil {
		t.Fatalf("OpenFile(%s): %v", ng, err)
	}
	e, err := Open(Options{Device: d, Arena: a, RegionSize: vmRegionSize, Format: format, FlushInterval: -1, Logger: quiet})
	if err != nil {
		d.Close()
		t.Fatalf("Open over %s: %v", ng, err)
	}
	return d, e
}

// vmValueSize spreads values over the shapes the tier sees: LMCache metadata, small and large
// chunks, and sizes that are not a multiple of the maximum transfer (split into commands).
func vmValueSize(i int) int {
	return []int{28, 100 << 10, 600 << 10, 3<<20 + 123, 4 << 20}[i%5]
}

func vmVersion(key string, version int) []byte {
	i, _ := strconv.Atoi(strings.TrimPrefix(key, "vm:"))
	return value(vmValueSize(i), i*1000+version)
}

func ruhsByPID(t *testing.T, info *fdp.Info) map[int]uint64 {
	t.Helper()
	m := map[int]uint64{}
	for _, r := range info.RUHs {
		m[int(r.PID)] = r.RUAMW
	}
	if len(m) == 0 {
		t.Fatalf("%s reports no RUH status: %v", info.Device, info.Warnings)
	}
	return m
}

// TestVMCommandCPU measures what one command costs the host's CPU (user and system time of the
// process, io_uring submission and the driver included) through passthrough on /dev/ng0n1 and
// through O_DIRECT on the block device /dev/nvme0n1 of the same namespace, with the same buffers
// one at a time, and logs both and their ratio. It asserts nothing about them: under emulation
// only the ratio means something. It writes the namespace's first 64 MiB, so it runs before
// TestVMPassthroughLog formats it (tests run in source order).
func TestVMCommandCPU(t *testing.T) {
	ng, phase := vmNamespace(t)
	if phase != 1 {
		t.Skip("phase 1 only")
	}
	blk := os.Getenv("KVRESP_TEST_NVME_BLK")
	if blk == "" {
		t.Fatal("KVRESP_VM is set but KVRESP_TEST_NVME_BLK (the namespace's block device) is not")
	}
	a := newArena(t)
	for _, size := range []int{128 << 10, 512 << 10} {
		buf := slabBuf(t, a, size)
		copy(buf, value(size, 1))
		cost := map[string]float64{}
		for _, path := range []string{ng, blk} {
			d, err := OpenFile(FileOptions{Path: path, Rings: 1, QueueDepth: 1, Arena: a, Trim: TrimOff, Logger: quiet})
			if err != nil {
				t.Fatalf("OpenFile(%s): %v", path, err)
			}
			for _, write := range []bool{true, false} {
				res := testing.Benchmark(func(b *testing.B) {
					b.SetBytes(int64(size))
					start := cpuTime(t)
					for i := range b.N {
						off := int64(i%(64<<20/size)) * int64(size)
						var err error
						if write {
							err = d.WriteAt(buf, off, ClassHot)
						} else {
							err = d.ReadAt(buf, off)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(cpuTime(t)-start)/float64(b.N), "cpu-ns/op")
				})
				op := map[bool]string{true: "write", false: "read"}[write]
				cost[path+" "+op] = res.Extra["cpu-ns/op"]
				t.Logf("%s %s %d KiB: %s, %.0f CPU ns per command", path, op, size>>10, res, res.Extra["cpu-ns/op"])
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
		}
		for _, op := range []string{"write", "read"} {
			t.Logf("%d KiB %s: passthrough/O_DIRECT CPU per command = %.2f", size>>10, op, cost[ng+" "+op]/cost[blk+" "+op])
		}
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkPlacement compares the RUH status before and after a stretch of writes with the bytes
// the device wrote by class between st0 and st1: the available media writes of each handle
// must have dropped by the blocks written with its placement ID, modulo the reclaim unit (a
// handle that fills its unit moves to a fresh one and goes on), which a byte written with the
// wrong ID would upset on two handles.
func checkPlacement(t *testing.T, what string, was, now map[int]uint64, pids [numClasses]int, st0, st1 FileStats, lba int64, ruLBAs uint64) {
	t.Helper()
	for pid, w := range was {
		var wrote int64
		for c, p := range pids {
			if p == pid {
				wrote += st1.WriteBytesByClass[c] - st0.WriteBytesByClass[c]
			}
		}
		dropped := (w + ruLBAs - now[pid]%ruLBAs) % ruLBAs
		if dropped != uint64(wrote/lba)%ruLBAs {
			t.Errorf("%s: PID %d: available media writes dropped by %d blocks (mod %d); kvresp wrote %d blocks with it", what, pid, dropped, ruLBAs, wrote/lba)
		} else if wrote > 0 {
			t.Logf("%s: PID %d: %d bytes written, all on its handle", what, pid, wrote)
		}
	}
}

func TestVMPassthroughLog(t *testing.T) {
	ng, phase := vmNamespace(t)
	switch phase {
	case 1:
		vmPhase1(t, ng)
	case 2:
		vmPhase2(t, ng)
	default:
		t.Fatalf("no phase %d", phase)
	}
}

func vmPhase1(t *testing.T, ng string) {
	a := newArena(t)
	d, e := vmOpen(t, ng, a, true)
	// Every figure below counts from here: the device's counters and the namespace's state
	// are read with no write in between.
	st0 := d.Stats()
	before, err := fdp.Probe(ng)
	if err != nil {
		t.Fatal(err)
	}
	if !before.FDPEnabled || before.Config == nil {
		t.Fatalf("%s: FDP not enabled (%v)", ng, before.Warnings)
	}
	lba := int64(before.Namespace.LBASize)
	ruLBAs := before.Config.RUSize / uint64(lba)
	if !d.Passthrough() {
		t.Fatal("the device does not use passthrough")
	}
	pids, ok := d.Placement()
	if !ok {
		t.Fatal("the device writes without placement on an FDP namespace")
	}
	if pids[ClassMeta] == pids[ClassHot] || pids[ClassHot] == pids[ClassCold] || pids[ClassMeta] == pids[ClassCold] {
		t.Fatalf("classes share placement IDs: %v", pids)
	}
	if got := d.ReclaimUnitSize(); got != int64(before.Config.RUSize) {
		t.Errorf("ReclaimUnitSize = %d, want %d", got, before.Config.RUSize)
	}
	t.Logf("%s: %d-byte blocks, %d bytes, PIDs meta %d hot %d cold %d, reclaim units of %d MiB",
		ng, lba, d.Size(), pids[ClassMeta], pids[ClassHot], pids[ClassCold], before.Config.RUSize>>20)

	// 1. Placement, exactly: each handle's available media writes drop by what the device
	// wrote with its PID, modulo the reclaim unit, and unused handles' not at all.
	latest := map[string]int{}
	put1 := func(i, version int) {
		k := fmt.Sprintf("vm:%d", i)
		if err := put(t, e, a, k, vmVersion(k, version), 0); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		latest[k] = version
	}
	for i := range 10 {
		put1(i, 0)
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	mid, err := fdp.Probe(ng)
	if err != nil {
		t.Fatal(err)
	}
	st1 := d.Stats()
	checkPlacement(t, "first writes", ruhsByPID(t, before), ruhsByPID(t, mid), pids, st0, st1, lba, ruLBAs)
	if st1.WriteBytesByClass[ClassHot] == st0.WriteBytesByClass[ClassHot] {
		t.Error("no hot writes counted")
	}
	for i := range 10 {
		k := fmt.Sprintf("vm:%d", i)
		wantValue(t, e, k, vmVersion(k, 0))
	}

	// 2. Churn on a small device: about twice its size in overwrites of keys 10 to 49, while
	// the ten keys written above are read all along and never rewritten: reclaim moves them,
	// read since they were written, to the cold handle. Regions are reclaimed, entries
	// reinserted, regions deallocated.
	const pinned, keys = 10, 50
	rounds := int(2*d.Size()/(int64(keys-pinned)*(8<<20)/5)) + 1
	read := 0
	for r := 1; r <= rounds; r++ {
		for i := pinned; i < keys; i++ {
			put1(i, r)
			if i%8 == 0 {
				for j := range pinned {
					k := fmt.Sprintf("vm:%d", j)
					if v := get(t, e, k); v != nil {
						if !bytes.Equal(v, vmVersion(k, latest[k])) {
							t.Fatalf("%s: wrong bytes", k)
						}
						read++
					}
				}
			}
		}
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	es, st2 := e.EngineStats(), d.Stats()
	t.Logf("churn: %d rounds, %d reads, %d reclaims, %d reinsertions, %d trims; bytes by class: meta %d hot %d cold %d",
		rounds, read, es.Reclaims, es.Reinsertions, es.Trims, st2.WriteBytesByClass[ClassMeta], st2.WriteBytesByClass[ClassHot], st2.WriteBytesByClass[ClassCold])
	if es.Reclaims == 0 || es.Trims == 0 {
		t.Fatalf("no reclaim or no deallocation ran (reclaims %d, trims %d)", es.Reclaims, es.Trims)
	}
	if es.Reinsertions == 0 || st2.WriteBytesByClass[ClassCold] == 0 {
		t.Errorf("nothing was reinserted on the cold handle (reinsertions %d, cold bytes %d)", es.Reinsertions, st2.WriteBytesByClass[ClassCold])
	}
	if st2.WriteBytesByClass[ClassMeta] == 0 {
		t.Error("no summaries or headers on the meta handle")
	}

	// 3. Deallocated regions read back as zeroes (QEMU: DLFEAT says so).
	zeroes := 0
	buf := slabBuf(t, a, 1<<20)
	for _, r := range e.regions {
		e.mu.Lock()
		free := r.state == regionFree
		e.mu.Unlock()
		if !free {
			continue
		}
		if err := d.ReadAt(buf, e.regionOff(r.idx)); err != nil {
			t.Fatal(err)
		}
		if bytes.Count(buf, []byte{0}) != len(buf) {
			t.Errorf("region %d is free (deallocated) but its first MiB is not zeroes", r.idx)
		}
		zeroes++
	}
	if zeroes == 0 {
		t.Error("no free region to check for deallocation")
	}

	// 4. What the device counted as host writes is what kvresp wrote, each byte on its class's
	// handle.
	after, err := fdp.Probe(ng)
	if err != nil {
		t.Fatal(err)
	}
	checkPlacement(t, "churn", ruhsByPID(t, mid), ruhsByPID(t, after), pids, st1, st2, lba, ruLBAs)
	if before.Stats == nil || after.Stats == nil {
		t.Fatalf("no FDP statistics: %v", after.Warnings)
	}
	host := after.Stats.HostBytesWritten.Lo - before.Stats.HostBytesWritten.Lo
	if wrote := st2.WriteBytes - st0.WriteBytes; host != uint64(wrote) {
		t.Errorf("FDP statistics: %d host bytes written during the test; kvresp wrote %d", host, wrote)
	}
	t.Logf("FDP: host bytes written %d, media bytes written %d, write amplification %.3f",
		host, after.Stats.MediaBytesWritten.Lo-before.Stats.MediaBytesWritten.Lo, after.Stats.WriteAmplification)

	// 5. The manifest: every key the log holds now, with its version, for phase 2.
	var m strings.Builder
	for k, v := range latest {
		if _, ok, _ := e.Stat(k); ok {
			fmt.Fprintf(&m, "%s %d\n", k, v)
		}
	}
	if err := put(t, e, a, vmManifest, []byte(m.String()), 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
	t.Logf("manifest: %d keys; the engine is left open for the power cut", strings.Count(m.String(), "\n"))
}

func vmPhase2(t *testing.T, ng string) {
	a := newArena(t)
	d, e := vmOpen(t, ng, a, false)
	defer d.Close()
	defer e.Close()
	m := get(t, e, vmManifest)
	if m == nil {
		t.Fatalf("the manifest written in phase 1 is gone (%d entries recovered)", e.EngineStats().Recovered)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(m)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		version, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("manifest line %q", line)
		}
		wantValue(t, e, k, vmVersion(k, version))
		n++
	}
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
	t.Logf("phase 2: %d keys of the manifest exact after the power cut (%d entries recovered)", n, e.EngineStats().Recovered)
}
