//go:build linux

package fdp

// Tests against a real NVMe namespace with FDP: the QEMU guest that `make vm-test` boots, with
//
//	-device nvme-subsys,id=subsys0,nqn=subsys0,fdp=on,fdp.runs=64M,fdp.nrg=1,fdp.nruh=8
//	-device nvme,id=nvme0,serial=deadbeef,subsys=subsys0
//	-device nvme-ns,drive=nvm,nsid=1,fdp.ruhs=0-7
//
// 512-byte blocks and QEMU's default MDTS of 7 (512 KiB). They skip unless KVRESP_VM is set, and
// then fail unless KVRESP_TEST_NVME_NG (/dev/ng0n1) and KVRESP_TEST_NVME_CTRL (/dev/nvme0) name
// the devices. They need root. They write only the last 16 MiB of the namespace (scratchArea),
// and FDP state (RUAMW, statistics) lives in QEMU's memory, so a later boot starts afresh.

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// vmDevices returns the namespace and controller devices, or skips outside the VM.
func vmDevices(t *testing.T) (ng, ctrl string) {
	t.Helper()
	if os.Getenv("KVRESP_VM") == "" {
		t.Skip("KVRESP_VM is not set: this test runs in the QEMU guest of make vm-test")
	}
	ng, ctrl = os.Getenv("KVRESP_TEST_NVME_NG"), os.Getenv("KVRESP_TEST_NVME_CTRL")
	if ng == "" || ctrl == "" {
		t.Fatalf("KVRESP_VM is set but KVRESP_TEST_NVME_NG=%q KVRESP_TEST_NVME_CTRL=%q: set both (e.g. /dev/ng0n1 and /dev/nvme0)", ng, ctrl)
	}
	return ng, ctrl
}

// vmDev is an open namespace and its controller, with what the tests need to know.
type vmDev struct {
	ns     *Namespace
	ctrl   *Controller
	nsid   uint32
	lba    int    // bytes per logical block
	blocks uint64 // namespace size in blocks
	xfer   int    // largest transfer, MDTS
	endgid uint16
}

func openVM(t *testing.T) *vmDev {
	t.Helper()
	ngPath, ctrlPath := vmDevices(t)
	ns, err := OpenNamespace(ngPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	ctrl, err := OpenController(ctrlPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctrl.Close() })
	id, err := ctrl.IdentifyNamespace(ns.NSID())
	if err != nil {
		t.Fatal(err)
	}
	d := &vmDev{ns: ns, ctrl: ctrl, nsid: ns.NSID(), lba: int(id.LBASize), blocks: id.Size, xfer: 1 << 20, endgid: max(id.EndGID, 1)}
	if mt := ctrl.Identify().MaxTransfer; mt != 0 && mt < uint64(d.xfer) {
		d.xfer = int(mt)
	}
	return d
}

// mapBuf returns an mmap'd buffer freed at the end of the test.
func mapBuf(t *testing.T, n int) []byte {
	t.Helper()
	b, err := MapBuffer(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = UnmapBuffer(b) })
	return b
}

// write writes buf at slba in pieces no larger than the maximum transfer, with placement pid
// (-1: none).
func (d *vmDev) write(t *testing.T, slba uint64, buf []byte, pid int) {
	t.Helper()
	for off := 0; off < len(buf); off += d.xfer {
		end := min(off+d.xfer, len(buf))
		c := WriteCmd(d.nsid, slba+uint64(off/d.lba), uint32((end-off)/d.lba), pid)
		if _, err := d.ns.Exec(c, buf[off:end]); err != nil {
			t.Fatalf("write %d bytes at block %d with pid %d: %v", end-off, slba+uint64(off/d.lba), pid, err)
		}
	}
}

func (d *vmDev) read(t *testing.T, slba uint64, buf []byte) {
	t.Helper()
	for off := 0; off < len(buf); off += d.xfer {
		end := min(off+d.xfer, len(buf))
		if _, err := d.ns.Exec(ReadCmd(d.nsid, slba+uint64(off/d.lba), uint32((end-off)/d.lba)), buf[off:end]); err != nil {
			t.Fatalf("read %d bytes at block %d: %v", end-off, slba+uint64(off/d.lba), err)
		}
	}
}

func (d *vmDev) ruhs(t *testing.T) []RUHStatus {
	t.Helper()
	rs, err := d.ns.RUHStatus()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (d *vmDev) stats(t *testing.T) FDPStats {
	t.Helper()
	s, err := d.ctrl.FDPStats(d.endgid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scratchArea returns the first block of the namespace's last 16 MiB, where the tests write.
func (d *vmDev) scratchArea(t *testing.T) uint64 {
	t.Helper()
	n := uint64(16<<20) / uint64(d.lba)
	if d.blocks < 2*n {
		t.Fatalf("the namespace has %d blocks of %d bytes; the tests need at least 32 MiB", d.blocks, d.lba)
	}
	return d.blocks - n
}

func pidIndex(t *testing.T, rs []RUHStatus, pid uint16) int {
	t.Helper()
	for i, r := range rs {
		if r.PID == pid {
			return i
		}
	}
	t.Fatalf("no placement ID %d in the RUH status %+v", pid, rs)
	return -1
}

func TestVMProbe(t *testing.T) {
	ng, ctrl := vmDevices(t)
	info, err := Probe(ng)
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	if err := info.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := info.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	t.Logf("kvresp fdp info %s:\n%s", ng, text.String())

	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s does not hold", what)
		}
	}
	c, ns := info.Controller, info.Namespace
	check("the controller is "+ctrl, info.ControllerPath == ctrl)
	check("serial deadbeef", c.Serial == "deadbeef")
	check("MDTS is 512 KiB", c.MaxTransfer == 512<<10)
	check("FDP supported", c.FDPSupported)
	check("FDP enabled", info.FDPEnabled)
	check("512-byte blocks", ns.LBASize == 512)
	check("endurance group 1", info.EnduranceGroup == 1)
	check("no warnings", len(info.Warnings) == 0)
	if cf := info.Config; cf == nil {
		t.Error("no FDP configuration")
	} else {
		check("configuration valid", cf.Valid)
		check("1 reclaim group", cf.ReclaimGroups == 1)
		check("8 reclaim unit handles", cf.Handles == 8 && len(cf.RUHs) == 8)
		check("64 MiB reclaim units", cf.RUSize == 64<<20)
	}
	check("8 placement IDs", len(info.RUHs) == 8)
	seen := map[uint16]bool{}
	for _, r := range info.RUHs {
		seen[r.PID] = true
		// A reclaim unit of 64 MiB holds 131072 blocks of 512 bytes: none can have more left.
		check("RUAMW within a reclaim unit", r.RUAMW > 0 && r.RUAMW <= 64<<20/512)
	}
	check("placement IDs 0-7", len(seen) == 8 && seen[0] && seen[7])
	check("8 handles in the usage log", len(info.Usage) == 8)
	check("statistics", info.Stats != nil)
	check("text output names the serial", strings.Contains(text.String(), "deadbeef"))
	check("JSON output names the serial", strings.Contains(js.String(), `"serial": "deadbeef"`))

	if meta, hot, cold, err := DefaultPIDs(info.RUHs); err != nil || meta == hot || hot == cold {
		t.Errorf("DefaultPIDs: %d %d %d %v", meta, hot, cold, err)
	}
	if _, err := ParsePIDs("meta:0,hot:1,cold:8", info.RUHs); err == nil {
		t.Error("ParsePIDs took PID 8, which the namespace does not have")
	}
}

func TestVMPlacement(t *testing.T) {
	d := openVM(t)
	const pid = 3
	const size = 1 << 20
	blocks := uint64(size / d.lba)
	slba := d.scratchArea(t)
	buf := mapBuf(t, size)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9)
	}

	// QEMU moves the handle to a fresh reclaim unit when a write fills the current one, which
	// resets RUAMW; fill it first if 1 MiB would get there.
	rs := d.ruhs(t)
	if left := rs[pidIndex(t, rs, pid)].RUAMW; left <= blocks {
		t.Logf("PID %d has %d blocks left in its reclaim unit: filling it first", pid, left)
		for left > 0 {
			n := min(left, blocks)
			d.write(t, slba, buf[:n*uint64(d.lba)], pid)
			left -= n
		}
	}

	before, stats0 := d.ruhs(t), d.stats(t)
	d.write(t, slba, buf, pid)
	after, stats1 := d.ruhs(t), d.stats(t)

	if len(after) != len(before) {
		t.Fatalf("%d placement IDs before, %d after", len(before), len(after))
	}
	for i := range after {
		want := before[i].RUAMW
		if before[i].PID == pid {
			want -= blocks // QEMU counts RUAMW in logical blocks
		}
		if after[i].PID != before[i].PID || after[i].RUAMW != want {
			t.Errorf("PID %d: RUAMW %d -> %d, want %d", before[i].PID, before[i].RUAMW, after[i].RUAMW, want)
		}
	}
	if stats1.HostBytesWritten.Hi != stats0.HostBytesWritten.Hi || stats1.HostBytesWritten.Lo-stats0.HostBytesWritten.Lo != size {
		t.Errorf("host bytes written %s -> %s, want +%d", stats0.HostBytesWritten, stats1.HostBytesWritten, size)
	}

	got := mapBuf(t, size)
	d.read(t, slba, got)
	if !bytes.Equal(got, buf) {
		t.Fatal("read back differs from what was written")
	}
}

func TestVMDeallocate(t *testing.T) {
	d := openVM(t)
	id, err := d.ctrl.IdentifyNamespace(d.nsid)
	if err != nil {
		t.Fatal(err)
	}
	if !id.DeallocatedReadsZeroes() {
		t.Skipf("the namespace does not promise zeroes for deallocated blocks (DLFEAT %#x)", id.DLFEAT)
	}
	// 256 KiB 8 MiB into the scratch area: away from TestVMPlacement's megabyte, and aligned so
	// that the host's discard frees whole blocks of the image file.
	const size = 256 << 10
	slba := d.scratchArea(t) + uint64(8<<20)/uint64(d.lba)
	blocks := uint64(size / d.lba)
	buf := mapBuf(t, size)
	for i := range buf {
		buf[i] = 0xA5
	}
	d.write(t, slba, buf, -1)
	got := mapBuf(t, size)
	d.read(t, slba, got)
	if !bytes.Equal(got, buf) {
		t.Fatal("read back differs from what was written")
	}

	ranges := mapBuf(t, 4096)
	n, err := PutDSMRanges(ranges, []DSMRange{{SLBA: slba, Blocks: uint32(blocks)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ns.Exec(DeallocateCmd(d.nsid, 1), ranges[:n]); err != nil {
		t.Fatalf("deallocate: %v", err)
	}
	d.read(t, slba, got)
	for i, c := range got {
		if c != 0 {
			t.Fatalf("byte %d of the deallocated range reads %#x, not zero (QEMU zeroes a deallocated range only when its -drive has discard=unmap)", i, c)
		}
	}
}

func TestVMStatus(t *testing.T) {
	d := openVM(t)
	buf := mapBuf(t, d.lba)
	// A block past the end: the device completes the command with LBA out of range.
	_, err := d.ns.Exec(ReadCmd(d.nsid, d.blocks, 1), buf)
	if !errors.Is(err, StatusLBAOutOfRange) {
		t.Fatalf("read past the end: %v, want %v", err, StatusLBAOutOfRange)
	}
	// A buffer that does not match the block count is refused before the kernel sees it.
	if _, err := d.ns.Exec(Command{Opcode: OpRead, NSID: d.nsid, DataLen: uint32(2 * d.lba)}, buf); err == nil {
		t.Fatal("a DataLen larger than the buffer was sent")
	}
}
