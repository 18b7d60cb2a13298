package rawblock

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

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
	before, err := fdp.Probe(ng)
	if err != nil {
		t.Fatal(err)
	}
	if !before.FDPEnabled || before.Config == nil {
		t.Fatalf("%s: FDP not enabled (%v)", ng, before.Warnings)
	}
	lba := int64(before.Namespace.LBASize)
	ruLBAs := before.Config.RUSize / uint64(lba)
	a := newArena(t)
	d, e := vmOpen(t, ng, a, true)
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

	// 1. Placement, exactly: a few values (less than a reclaim unit per handle, so no handle
	// wraps more than once), then each handle's available media writes must have dropped by
	// what the device wrote with its PID, modulo the reclaim unit, and unused handles not at all.
	ruBefore := ruhsByPID(t, before)
	st0 := d.Stats()
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
	ruMid := ruhsByPID(t, mid)
	for pid, was := range ruBefore {
		var wroteLBAs uint64
		for c, p := range pids {
			if p == pid {
				wroteLBAs += uint64((st1.WriteBytesByClass[c] - st0.WriteBytesByClass[c]) / lba)
			}
		}
		// A handle that fills its unit moves to a fresh one (RUAMW = a whole unit) and goes on.
		dropped := (was + ruLBAs - ruMid[pid]%ruLBAs) % ruLBAs
		if dropped != wroteLBAs%ruLBAs {
			t.Errorf("PID %d: available media writes dropped by %d blocks; kvresp wrote %d blocks with it", pid, dropped, wroteLBAs)
		}
	}
	if st1.WriteBytesByClass[ClassHot] == st0.WriteBytesByClass[ClassHot] {
		t.Error("no hot writes counted")
	}
	for i := range 10 {
		k := fmt.Sprintf("vm:%d", i)
		wantValue(t, e, k, vmVersion(k, 0))
	}

	// 2. Churn on a small device: about twice its size in overwrites, reading a few keys all
	// along (reclaim moves what was read since it was written to the cold handle), so regions
	// are reclaimed, their entries reinserted and the regions deallocated.
	keys := 40
	rounds := int(2*d.Size()/(int64(keys)*(8<<20)/5)) + 1
	read := 0
	for r := 1; r <= rounds; r++ {
		for i := range keys {
			put1(i, r)
			if i%8 == 0 {
				for j := 0; j < keys; j += 8 {
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

	// 4. What the device counted as host writes is what kvresp wrote.
	after, err := fdp.Probe(ng)
	if err != nil {
		t.Fatal(err)
	}
	if before.Stats == nil || after.Stats == nil {
		t.Fatalf("no FDP statistics: %v", after.Warnings)
	}
	host := after.Stats.HostBytesWritten.Lo - before.Stats.HostBytesWritten.Lo
	if host != uint64(st2.WriteBytes) {
		t.Errorf("FDP statistics: %d host bytes written during the test; kvresp wrote %d", host, st2.WriteBytes)
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
