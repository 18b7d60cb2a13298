//go:build linux

package uring

// NVMe passthrough (IORING_OP_URING_CMD) on a real kernel driver: the test machine of `make
// vm-test` (scripts/vm, DESIGN §6), whose guest has a QEMU FDP drive, or a scratch drive of your
// own named by the environment:
//
//	KVRESP_TEST_NVME_NG    the namespace's char device (/dev/ng0n1); I/O commands
//	KVRESP_TEST_NVME_CTRL  the controller (/dev/nvme0); admin commands
//
// The tests WRITE to the namespace. Without KVRESP_TEST_NVME_NG and outside the test machine
// (KVRESP_VM unset) they skip; otherwise a device that is not set or not there fails them. Expectations
// about the device itself (serial deadbeef, FDP, QEMU's status codes) hold on the test machine
// only. The command encoding (struct nvme_uring_cmd and NVMe command fields) is kept here on
// purpose: it is what the tests check, not something they should share with the code under test.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// URING_CMD command numbers, _IOWR('N', 0x80 / 0x82, struct nvme_uring_cmd).
const (
	nvmeURingCmdIO    uint32 = 0xC0484E80
	nvmeURingCmdAdmin uint32 = 0xC0484E82
	nvmeIoctlID       uint   = 0x4E40 // NVME_IOCTL_ID, _IO('N', 0x40): the namespace ID of an ng/nvme device
)

// NVMe opcodes and command fields.
const (
	nvmeWrite        uint8  = 0x01 // I/O
	nvmeRead         uint8  = 0x02 // I/O
	nvmeIOMgmtRecv   uint8  = 0x12 // I/O
	nvmeIdentify     uint8  = 0x06 // admin
	nvmeGetFeatures  uint8  = 0x0A // admin
	nvmeFeatFDP      uint32 = 0x1D
	nvmeDTypePlace   uint32 = 2 // CDW12 bits 23:20 of a write: data placement, DSPEC = placement ID
	nvmeCtrattFDP    uint32 = 1 << 19
	nvmeIdentifySize        = 4096
)

// nvmeCmd is what the tests put in struct nvme_uring_cmd; the rest of its 72 bytes stays zero
// (flags, metadata, timeout_ms: the kernel's default).
type nvmeCmd struct {
	opcode  uint8
	nsid    uint32
	addr    uint64 // the data buffer; with URingCmdFixed, an address inside the registered buffer
	dataLen uint32
	cdw     [6]uint32 // CDW10..CDW15
}

// encode writes c as struct nvme_uring_cmd (include/uapi/linux/nvme_ioctl.h) into the SQE's
// command area: opcode u8@0, flags u8@1, nsid u32@4, cdw2@8, cdw3@12, metadata u64@16, addr
// u64@24, metadata_len u32@32, data_len u32@36, cdw10..cdw15 @40..@60, timeout_ms u32@64.
func (c nvmeCmd) encode(dst *[80]byte) {
	*dst = [80]byte{}
	le := binary.LittleEndian
	dst[0] = c.opcode
	le.PutUint32(dst[4:], c.nsid)
	le.PutUint64(dst[24:], c.addr)
	le.PutUint32(dst[36:], c.dataLen)
	for i, v := range c.cdw {
		le.PutUint32(dst[40+4*i:], v)
	}
}

// nvmeStatus is a non-zero NVMe completion status, which a URING_CMD completion reports as a
// positive Res, apart from the kernel's own failures (negative Res, syscall.Errno).
type nvmeStatus uint16

func (s nvmeStatus) sc() uint8  { return uint8(s) }          // Status Code, bits 7:0
func (s nvmeStatus) sct() uint8 { return uint8(s>>8) & 0x7 } // Status Code Type, bits 10:8
func (s nvmeStatus) dnr() bool  { return s&(1<<14) != 0 }    // Do Not Retry

func (s nvmeStatus) Error() string {
	return fmt.Sprintf("nvme status %#x (SCT %d, SC %#x, DNR %t)", uint16(s), s.sct(), s.sc(), s.dnr())
}

// nvmeErr is nil for a URING_CMD that succeeded, a syscall.Errno for one the kernel refused,
// and an nvmeStatus for one the device failed.
func nvmeErr(c CQE) error {
	if c.Res > 0 {
		return nvmeStatus(c.Res)
	}
	return c.Err()
}

// nvmeDev is the drive under test, opened, with what the tests need to know about it.
type nvmeDev struct {
	ctrl, ng int // O_RDWR descriptors of KVRESP_TEST_NVME_CTRL and KVRESP_TEST_NVME_NG
	inVM     bool
	nsid     uint32
	lbaSize  int
	nlbas    uint64 // namespace size in logical blocks (NSZE)
	endgid   uint16 // endurance group of the namespace
	idCtrl   []byte // Identify Controller data
	maxXfer  int    // largest transfer MDTS allows; 0 = no limit
	fdp      bool   // FDP enabled on the namespace's endurance group
}

// devPath returns the device the environment variable name gives, skipping the test when no
// NVMe test device is configured at all and failing it when one is configured but missing.
func devPath(t *testing.T, name string) (path string, inVM bool) {
	t.Helper()
	inVM = os.Getenv("KVRESP_VM") != ""
	if os.Getenv("KVRESP_TEST_NVME_NG") == "" && !inVM {
		t.Skip("no NVMe test device: run make vm-test, or set KVRESP_TEST_NVME_NG and KVRESP_TEST_NVME_CTRL to a scratch drive")
	}
	path = os.Getenv(name)
	if path == "" {
		t.Fatalf("%s is not set", name)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return path, inVM
}

func openDev(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return fd
}

// nvmeRing sets up a ring for passthrough. Unlike newRing it never skips: a test that got this
// far has a drive to test, and io_uring missing is a failure.
func nvmeRing(t *testing.T) *Ring {
	t.Helper()
	r, err := New(Params{Entries: 16, SQE128: true, CQE32: true})
	if err != nil {
		t.Fatalf("io_uring with SQE128|CQE32: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// openNVMe opens the drive, sets up a passthrough ring and learns the drive's geometry through
// it: Identify Controller and Namespace on the controller, Get Features FDP.
func openNVMe(t *testing.T) (*nvmeDev, *Ring) {
	t.Helper()
	ctrlPath, inVM := devPath(t, "KVRESP_TEST_NVME_CTRL")
	ngPath, _ := devPath(t, "KVRESP_TEST_NVME_NG")
	d := &nvmeDev{ctrl: openDev(t, ctrlPath), ng: openDev(t, ngPath), inVM: inVM}
	r := nvmeRing(t)
	nsid, err := unix.IoctlRetInt(d.ng, nvmeIoctlID)
	if err != nil || nsid <= 0 {
		t.Fatalf("NVME_IOCTL_ID on %s: %d, %v", ngPath, nsid, err)
	}
	d.nsid = uint32(nsid)

	d.idCtrl = alignedBuf(t, nvmeIdentifySize)
	d.mustOK(t, r, d.ctrl, nvmeURingCmdAdmin, -1, nvmeCmd{opcode: nvmeIdentify, cdw: [6]uint32{1}}, d.idCtrl)
	// MDTS is a power of two in units of the minimum memory page size, 4 KiB on every drive
	// the kernel drives (it assumes the same, NVME_CTRL_PAGE_SHIFT).
	if mdts := d.idCtrl[77]; mdts != 0 {
		d.maxXfer = 4096 << mdts
	}

	idNS := alignedBuf(t, nvmeIdentifySize)
	d.mustOK(t, r, d.ctrl, nvmeURingCmdAdmin, -1, nvmeCmd{opcode: nvmeIdentify, nsid: d.nsid}, idNS)
	le := binary.LittleEndian
	d.nlbas = le.Uint64(idNS[0:])
	flbas := idNS[26]
	format := int(flbas&0xf) | int(flbas>>5&0x3)<<4 // FLBAS bits 3:0, then 6:5 above 16 formats
	lbads := idNS[128+4*format+2]                   // LBA Format: LBADS (log2 of the LBA size) in bits 23:16
	d.lbaSize = 1 << lbads
	d.endgid = le.Uint16(idNS[102:])
	if d.endgid == 0 {
		d.endgid = 1 // not reported: a drive with one endurance group calls it 1
	}
	if d.nlbas == 0 || d.lbaSize < 512 {
		t.Fatalf("Identify Namespace %d: %d blocks of %d bytes", d.nsid, d.nlbas, d.lbaSize)
	}

	if le.Uint32(d.idCtrl[96:])&nvmeCtrattFDP != 0 {
		c := run(t, r, func(s *SQE) {
			s.PrepURingCmd(int32(d.ctrl), nvmeURingCmdAdmin)
			nvmeCmd{opcode: nvmeGetFeatures, cdw: [6]uint32{nvmeFeatFDP, uint32(d.endgid)}}.encode(r.Cmd(s))
		})
		if err := nvmeErr(c); err != nil {
			t.Fatalf("Get Features FDP (endurance group %d): %v", d.endgid, err)
		}
		d.fdp = c.Big[0]&1 != 0 // the command's result (CQE DW0, CQE byte 16): FDPE
	}
	if d.inVM && !d.fdp {
		t.Fatal("the test machine's drive has FDP disabled; QEMU's nvme-subsys fdp=on is missing")
	}
	return d, r
}

// do submits one passthrough command on fd and returns its completion. buf, if not nil, is the
// data buffer; fixed >= 0 names the registered buffer it lies in.
func (d *nvmeDev) do(t *testing.T, r *Ring, fd int, op uint32, fixed int, cmd nvmeCmd, buf []byte) CQE {
	t.Helper()
	if buf != nil {
		cmd.addr, cmd.dataLen = addrOf(buf), uint32(len(buf))
	}
	return run(t, r, func(s *SQE) {
		s.PrepURingCmd(int32(fd), op)
		cmd.encode(r.Cmd(s))
		if fixed >= 0 {
			s.SetURingCmdFixed(uint16(fixed))
		}
	})
}

func (d *nvmeDev) mustOK(t *testing.T, r *Ring, fd int, op uint32, fixed int, cmd nvmeCmd, buf []byte) CQE {
	t.Helper()
	c := d.do(t, r, fd, op, fixed, cmd, buf)
	if err := nvmeErr(c); err != nil {
		t.Fatalf("NVMe opcode %#x: %v", cmd.opcode, err)
	}
	return c
}

// rw is an NVMe Read or Write of len(buf) bytes at slba. pid >= 0 makes a write a placed one:
// DTYPE 2 in CDW12 bits 23:20 and the placement ID as DSPEC in CDW13 bits 31:16.
func (d *nvmeDev) rw(op uint8, slba uint64, buf []byte, pid int) nvmeCmd {
	c := nvmeCmd{opcode: op, nsid: d.nsid, addr: addrOf(buf), dataLen: uint32(len(buf))}
	c.cdw[0], c.cdw[1] = uint32(slba), uint32(slba>>32)
	c.cdw[2] = uint32(len(buf)/d.lbaSize - 1) // NLB, 0-based
	if pid >= 0 {
		c.cdw[2] |= nvmeDTypePlace << 20
		c.cdw[3] = uint32(pid) << 16
	}
	return c
}

// ruamw returns, per placement ID, the reclaim-unit available media writes in logical blocks
// (I/O Management Receive, RUH Status): a write placed on a PID lowers that PID's count.
func (d *nvmeDev) ruamw(t *testing.T, r *Ring) map[uint16]uint64 {
	t.Helper()
	buf := alignedBuf(t, 4096)
	cmd := nvmeCmd{opcode: nvmeIOMgmtRecv, nsid: d.nsid}
	cmd.cdw[0] = 1                      // MO 1: reclaim unit handle status
	cmd.cdw[1] = uint32(len(buf)/4 - 1) // NUMD, 0-based dwords
	d.mustOK(t, r, d.ng, nvmeURingCmdIO, -1, cmd, buf)
	le := binary.LittleEndian
	n := int(le.Uint16(buf[14:]))
	if n == 0 || 16+32*n > len(buf) {
		t.Fatalf("RUH status lists %d descriptors", n)
	}
	m := make(map[uint16]uint64, n)
	for i := range n {
		desc := buf[16+32*i:]
		m[le.Uint16(desc[0:])] = le.Uint64(desc[8:])
	}
	return m
}

func fillPattern(b []byte, seed byte) {
	for i := range b {
		b[i] = byte(i/512)*13 + byte(i)*7 + seed
	}
}

func TestPassthroughNop(t *testing.T) {
	devPath(t, "KVRESP_TEST_NVME_NG")
	r := nvmeRing(t)
	c := mustRes(t, r, 0, func(s *SQE) { s.PrepNop() })
	if c.Big != [2]uint64{} {
		t.Fatalf("NOP on a CQE32 ring: extra words %#x, want zero", c.Big)
	}
}

// TestPassthroughNeedsBigRing: the NVMe driver refuses a URING_CMD from a ring without both
// SQE128 and CQE32 with EOPNOTSUPP, which surfaces as a syscall.Errno, not a device status.
func TestPassthroughNeedsBigRing(t *testing.T) {
	ngPath, _ := devPath(t, "KVRESP_TEST_NVME_NG")
	fd := openDev(t, ngPath)
	nsid, err := unix.IoctlRetInt(fd, nvmeIoctlID)
	if err != nil {
		t.Fatalf("NVME_IOCTL_ID: %v", err)
	}
	buf := alignedBuf(t, 4096)
	for _, p := range []Params{{Entries: 2}, {Entries: 2, SQE128: true}, {Entries: 2, CQE32: true}} {
		t.Run(fmt.Sprintf("SQE128=%t,CQE32=%t", p.SQE128, p.CQE32), func(t *testing.T) {
			r := newRing(t, p)
			c := run(t, r, func(s *SQE) {
				s.PrepURingCmd(int32(fd), nvmeURingCmdIO)
				if p.SQE128 { // a valid read, so that the ring is the only thing wrong
					nvmeCmd{opcode: nvmeRead, nsid: uint32(nsid), addr: addrOf(buf), dataLen: 4096, cdw: [6]uint32{0, 0, 4096/512 - 1}}.encode(r.Cmd(s))
				}
			})
			err := nvmeErr(c)
			var errno syscall.Errno
			if !errors.As(err, &errno) || errno != syscall.EOPNOTSUPP {
				t.Fatalf("URING_CMD on this ring: res %d (%v), want EOPNOTSUPP as a syscall.Errno", c.Res, err)
			}
		})
	}
}

// TestPassthroughIdentify reads Identify Controller through NVME_URING_CMD_ADMIN on the
// controller, and the FDP feature's result through the CQE's extra words; the namespace's char
// device does not take admin commands.
func TestPassthroughIdentify(t *testing.T) {
	d, r := openNVMe(t)
	le := binary.LittleEndian
	vid := le.Uint16(d.idCtrl[0:])
	serial := strings.TrimRight(string(d.idCtrl[4:24]), " \x00")
	model := strings.TrimRight(string(d.idCtrl[24:64]), " \x00")
	ctratt := le.Uint32(d.idCtrl[96:])
	t.Logf("VID %#04x, serial %q, model %q, MDTS %d bytes, CTRATT %#x, FDP %t; namespace %d: %d x %d bytes, endurance group %d",
		vid, serial, model, d.maxXfer, ctratt, d.fdp, d.nsid, d.nlbas, d.lbaSize, d.endgid)
	if vid == 0 || serial == "" {
		t.Fatalf("Identify Controller: VID %#x, serial %q: not identify data", vid, serial)
	}
	if d.inVM {
		// QEMU's NVMe controller: Red Hat's PCI vendor ID, and the serial the VM gives it.
		if vid != 0x1b36 || serial != "deadbeef" {
			t.Errorf("Identify Controller: VID %#x serial %q, want 0x1b36 and deadbeef", vid, serial)
		}
		if ctratt&nvmeCtrattFDP == 0 {
			t.Errorf("CTRATT %#x lacks bit 19 (FDP)", ctratt)
		}
		if d.maxXfer != 512<<10 {
			t.Errorf("MDTS allows %d bytes, want QEMU's 512 KiB", d.maxXfer)
		}
	}

	// An admin command on the namespace's char device is not a thing the driver does.
	buf := alignedBuf(t, nvmeIdentifySize)
	c := d.do(t, r, d.ng, nvmeURingCmdAdmin, -1, nvmeCmd{opcode: nvmeIdentify, cdw: [6]uint32{1}}, buf)
	if err := nvmeErr(c); !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("Identify through NVME_URING_CMD_ADMIN on the ng device: %v, want ENOTTY", err)
	}
}

// TestPassthroughWriteRead writes 256 KiB with a placement ID and reads it back, byte for byte,
// from plain buffers, from registered buffers, and from registered buffers on a registered
// file. On an FDP drive the write must land on its placement ID's reclaim unit, and there only.
func TestPassthroughWriteRead(t *testing.T) {
	d, r := openNVMe(t)
	const size = 256 << 10
	if size%d.lbaSize != 0 || (d.maxXfer != 0 && size > d.maxXfer) {
		t.Skipf("256 KiB is not a transfer this drive takes (LBA %d bytes, MDTS %d bytes)", d.lbaSize, d.maxXfer)
	}
	// Two registered buffers, each holding a write half and a read half at interior offsets.
	bufs := [][]byte{alignedBuf(t, 2*size), alignedBuf(t, 2*size)}
	if err := r.RegisterBuffers(bufs); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFiles([]int{d.ng}); err != nil {
		t.Fatal(err)
	}
	for i, v := range []struct {
		name       string
		fixed      int // registered buffer index, or -1 for plain buffers
		fixedFile  bool
		wbuf, rbuf []byte
		pid        int
	}{
		{"plain", -1, false, alignedBuf(t, size), alignedBuf(t, size), 3},
		{"registered buffers", 0, false, bufs[0][:size], bufs[0][size:], 5},
		{"registered buffers and file", 1, true, bufs[1][size:], bufs[1][:size], 1},
	} {
		t.Run(v.name, func(t *testing.T) {
			pid := v.pid
			if !d.fdp {
				pid = -1
			}
			slba := uint64(1<<20/d.lbaSize) * uint64(i+1) // 1 MiB apart
			fillPattern(v.wbuf, byte(0x11*(i+1)))
			fill(v.rbuf, 0xee)
			fd := d.ng
			var flags uint8
			if v.fixedFile {
				fd, flags = 0, IOSQEFixedFile
			}
			submit := func(cmd nvmeCmd) CQE {
				return run(t, r, func(s *SQE) {
					s.PrepURingCmd(int32(fd), nvmeURingCmdIO)
					s.SetFlags(flags)
					cmd.encode(r.Cmd(s))
					if v.fixed >= 0 {
						s.SetURingCmdFixed(uint16(v.fixed))
					}
				})
			}
			var before map[uint16]uint64
			if pid >= 0 {
				before = d.ruamw(t, r)
				if _, ok := before[uint16(pid)]; !ok {
					t.Fatalf("PID %d is not among the drive's placement IDs %v", pid, before)
				}
			}
			if c := submit(d.rw(nvmeWrite, slba, v.wbuf, pid)); nvmeErr(c) != nil {
				t.Fatalf("write of %d bytes at LBA %d, PID %d: %v", size, slba, pid, nvmeErr(c))
			}
			if c := submit(d.rw(nvmeRead, slba, v.rbuf, -1)); nvmeErr(c) != nil {
				t.Fatalf("read of %d bytes at LBA %d: %v", size, slba, nvmeErr(c))
			}
			if !bytes.Equal(v.rbuf, v.wbuf) {
				t.Fatalf("read back differs from what was written (first bytes % x, want % x)", v.rbuf[:16], v.wbuf[:16])
			}
			if pid < 0 {
				return
			}
			after := d.ruamw(t, r)
			blocks := uint64(size / d.lbaSize)
			for p, b := range before {
				switch {
				case int(p) != pid:
					if after[p] != b {
						t.Errorf("PID %d: RUAMW %d -> %d; the write was placed on PID %d", p, b, after[p], pid)
					}
				case b >= blocks:
					if after[p] != b-blocks {
						t.Errorf("PID %d: RUAMW %d -> %d, want %d after a placed write of %d blocks", p, b, after[p], b-blocks, blocks)
					}
				case after[p] == b: // too little was left: the write moved on to a new reclaim unit
					t.Errorf("PID %d: RUAMW stayed %d after a placed write", p, b)
				}
			}
		})
	}
}

// TestPassthroughBatch submits 8 writes at once and matches their completions by user data
// (the device may finish them in any order), then reads all 8 back in one submit.
func TestPassthroughBatch(t *testing.T) {
	d, r := openNVMe(t)
	const n, size = 8, 64 << 10
	base := uint64(8 << 20 / d.lbaSize)
	wbufs, rbufs := make([][]byte, n), make([][]byte, n)
	for i := range n {
		wbufs[i], rbufs[i] = alignedBuf(t, size), alignedBuf(t, size)
		fillPattern(wbufs[i], byte(0x40+i))
		fill(rbufs[i], 0xee)
	}
	batch := func(what string, cmd func(i int) nvmeCmd) {
		t.Helper()
		for i := range n {
			s := r.GetSQE()
			if s == nil {
				t.Fatal("GetSQE: queue full")
			}
			s.PrepURingCmd(int32(d.ng), nvmeURingCmdIO)
			cmd(i).encode(r.Cmd(s))
			s.SetUserData(uint64(1000 + i))
		}
		if got, err := r.SubmitAndWait(n); err != nil || got != n {
			t.Fatalf("%s: submitted %d of %d: %v", what, got, n, err)
		}
		var cqes [n]CQE
		if got := r.PeekBatchCQE(cqes[:]); got != n {
			t.Fatalf("%s: %d completions ready, want %d", what, got, n)
		}
		r.CQAdvance(n)
		seen := make(map[uint64]bool)
		var order []uint64
		for _, c := range cqes {
			i := c.UserData - 1000
			if i >= n || seen[c.UserData] {
				t.Fatalf("%s: unexpected or repeated completion %+v", what, c)
			}
			seen[c.UserData] = true
			order = append(order, i)
			if err := nvmeErr(c); err != nil {
				t.Errorf("%s %d: %v", what, i, err)
			}
		}
		t.Logf("%s: completion order %v", what, order)
	}
	pid := func(i int) int {
		if !d.fdp {
			return -1
		}
		return i % 8
	}
	batch("write", func(i int) nvmeCmd { return d.rw(nvmeWrite, base+uint64(i*size/d.lbaSize), wbufs[i], pid(i)) })
	batch("read", func(i int) nvmeCmd { return d.rw(nvmeRead, base+uint64(i*size/d.lbaSize), rbufs[i], -1) })
	for i := range n {
		if !bytes.Equal(rbufs[i], wbufs[i]) {
			t.Errorf("write %d: read back differs", i)
		}
	}
}

// TestPassthroughDeviceStatus: a read past the end of the namespace completes with a positive
// Res, the NVMe status, which nvmeErr reports as an nvmeStatus and not as an errno.
func TestPassthroughDeviceStatus(t *testing.T) {
	d, r := openNVMe(t)
	buf := alignedBuf(t, d.lbaSize)
	c := d.do(t, r, d.ng, nvmeURingCmdIO, -1, d.rw(nvmeRead, d.nlbas, buf, -1), nil)
	if c.Res <= 0 {
		t.Fatalf("read at LBA %d (the namespace has %d): res %d, want a positive NVMe status", d.nlbas, d.nlbas, c.Res)
	}
	err := nvmeErr(c)
	var st nvmeStatus
	if !errors.As(err, &st) || errors.As(err, new(syscall.Errno)) {
		t.Fatalf("read past the end: %v (%T), want an nvmeStatus and no errno", err, err)
	}
	t.Logf("read past the end: %v", err)
	// LBA Out of Range: generic status type 0, code 0x80; QEMU sets Do Not Retry.
	if st.sct() != 0 || st.sc() != 0x80 {
		t.Errorf("status %v, want SCT 0 SC 0x80 (LBA out of range)", st)
	}
	if d.inVM && uint16(st) != 0x4080 {
		t.Errorf("status %#x, want QEMU's 0x4080", uint16(st))
	}
}

// TestPassthroughMaxTransfer: a transfer of MDTS bytes goes through; one block more is refused
// by the kernel (EINVAL) before it reaches the device.
func TestPassthroughMaxTransfer(t *testing.T) {
	d, r := openNVMe(t)
	if d.maxXfer == 0 {
		t.Skip("the drive reports no maximum transfer size (MDTS 0)")
	}
	buf := alignedBuf(t, d.maxXfer+d.lbaSize)
	d.mustOK(t, r, d.ng, nvmeURingCmdIO, -1, d.rw(nvmeRead, 0, buf[:d.maxXfer], -1), nil)
	c := d.do(t, r, d.ng, nvmeURingCmdIO, -1, d.rw(nvmeRead, 0, buf, -1), nil)
	if err := nvmeErr(c); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("read of %d bytes (MDTS %d): %v, want EINVAL", len(buf), d.maxXfer, err)
	}
}
