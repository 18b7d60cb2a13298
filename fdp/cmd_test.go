package fdp

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestURingCmdNumbers(t *testing.T) {
	// _IOWR('N', nr, struct nvme_uring_cmd): direction read|write (3) in bits 31:30, the
	// 72-byte size in bits 29:16, the type 'N' in 15:8 and the number in 7:0.
	iowr := func(nr uint32) uint32 { return 3<<30 | 72<<16 | 'N'<<8 | nr }
	if NVME_URING_CMD_IO != iowr(0x80) || NVME_URING_CMD_ADMIN != iowr(0x82) {
		t.Fatalf("IO %#x ADMIN %#x, want %#x %#x", NVME_URING_CMD_IO, NVME_URING_CMD_ADMIN, iowr(0x80), iowr(0x82))
	}
	if nvmeIoctlID != 'N'<<8|0x40 {
		t.Fatalf("NVME_IOCTL_ID %#x", nvmeIoctlID)
	}
}

func TestEncodeOffsets(t *testing.T) {
	c := Command{
		Opcode: 0xA5, NSID: 0x11111111, CDW2: 0x22222222, CDW3: 0x33333333,
		Metadata: 0x4444444444444444, Addr: 0x5555555555555555, MetadataLen: 0x66666666, DataLen: 0x77777777,
		CDW10: 0x1010101A, CDW11: 0x1111111B, CDW12: 0x1212121C, CDW13: 0x1313131D, CDW14: 0x1414141E, CDW15: 0x1515151F,
		TimeoutMS: 0x99999999,
	}
	var dst [80]byte
	for i := range dst {
		dst[i] = 0xEE // Encode must clear what an earlier command left
	}
	c.Encode(&dst)
	le := binary.LittleEndian
	u32 := []struct {
		off  int
		want uint32
	}{
		{4, c.NSID}, {8, c.CDW2}, {12, c.CDW3}, {32, c.MetadataLen}, {36, c.DataLen},
		{40, c.CDW10}, {44, c.CDW11}, {48, c.CDW12}, {52, c.CDW13}, {56, c.CDW14}, {60, c.CDW15},
		{64, c.TimeoutMS},
	}
	for _, f := range u32 {
		if got := le.Uint32(dst[f.off:]); got != f.want {
			t.Errorf("u32 at %d = %#x, want %#x", f.off, got, f.want)
		}
	}
	if got := le.Uint64(dst[16:]); got != c.Metadata {
		t.Errorf("metadata at 16 = %#x", got)
	}
	if got := le.Uint64(dst[24:]); got != c.Addr {
		t.Errorf("addr at 24 = %#x", got)
	}
	if dst[0] != 0xA5 {
		t.Errorf("opcode at 0 = %#x", dst[0])
	}
	// flags (1), rsvd1 (2..3), rsvd2 (68..71) and the 8 bytes past the struct are zero.
	for _, off := range []int{1, 2, 3, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79} {
		if dst[off] != 0 {
			t.Errorf("byte %d = %#x, want 0", off, dst[off])
		}
	}
	if got := DecodeCommand(&dst); got != c {
		t.Fatalf("DecodeCommand = %+v, want %+v", got, c)
	}
}

func TestRWCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Command
		want Command
	}{
		// The command DESIGN §5 saw work on QEMU: 256 KiB of 512-byte blocks with PID 3.
		{"write pid 3", WriteCmd(1, 0, 512, 3), Command{Opcode: 0x01, NSID: 1, CDW12: 0x002001FF, CDW13: 0x00030000}},
		{"write no placement", WriteCmd(1, 0x1_0000_0002, 1, -1), Command{Opcode: 0x01, NSID: 1, CDW10: 2, CDW11: 1}},
		{"write pid 0", WriteCmd(7, 5, 65536, 0), Command{Opcode: 0x01, NSID: 7, CDW10: 5, CDW12: 0x0020FFFF}},
		{"write pid max", WriteCmd(1, 0, 8, 0xFFFF), Command{Opcode: 0x01, NSID: 1, CDW12: 0x00200007, CDW13: 0xFFFF0000}},
		{"read", ReadCmd(2, 0xAABBCCDD_11223344, 8), Command{Opcode: 0x02, NSID: 2, CDW10: 0x11223344, CDW11: 0xAABBCCDD, CDW12: 7}},
		{"flush", FlushCmd(3), Command{Opcode: 0x00, NSID: 3}},
	} {
		if tc.c != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.c, tc.want)
		}
	}
}

func TestRWCommandsRejectBugs(t *testing.T) {
	for name, f := range map[string]func(){
		"0 blocks":     func() { ReadCmd(1, 0, 0) },
		"65537 blocks": func() { WriteCmd(1, 0, 65537, -1) },
		"pid -2":       func() { WriteCmd(1, 0, 1, -2) },
		"pid 65536":    func() { WriteCmd(1, 0, 1, 65536) },
		"0 ranges":     func() { DeallocateCmd(1, 0) },
		"257 ranges":   func() { DeallocateCmd(1, 257) },
		"log of 0":     func() { LogPageCmd(LogFDPStats, 0, 1, 0, 0) },
		"log of 6":     func() { LogPageCmd(LogFDPStats, 0, 1, 0, 6) },
		"ruhs of 10":   func() { RUHStatusCmd(1, 10) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestDeallocate(t *testing.T) {
	c := DeallocateCmd(1, 2)
	want := Command{Opcode: 0x09, NSID: 1, CDW10: 1, CDW11: 4, DataLen: 32}
	if c != want {
		t.Fatalf("DeallocateCmd = %+v, want %+v", c, want)
	}
	buf := make([]byte, 40)
	n, err := PutDSMRanges(buf, []DSMRange{{Blocks: 8, SLBA: 0x100}, {Attr: 0xA, Blocks: 0x10000, SLBA: 0x1_0000_0000}})
	if err != nil || n != 32 {
		t.Fatalf("PutDSMRanges = %d, %v", n, err)
	}
	wantBytes := []byte{
		0, 0, 0, 0, 8, 0, 0, 0, 0x00, 0x01, 0, 0, 0, 0, 0, 0,
		0xA, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0,
	}
	if !bytes.Equal(buf[:32], wantBytes) {
		t.Fatalf("ranges\n% x\nwant\n% x", buf[:32], wantBytes)
	}
	if _, err := PutDSMRanges(buf, make([]DSMRange, 3)); err == nil {
		t.Fatal("3 ranges fit in 40 bytes")
	}
	if _, err := PutDSMRanges(buf, nil); err == nil {
		t.Fatal("no ranges accepted")
	}
}

func TestAdminCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Command
		want Command
	}{
		{"identify controller", IdentifyCmd(CNSController, 0), Command{Opcode: 0x06, CDW10: 1, DataLen: 4096}},
		{"identify namespace", IdentifyCmd(CNSNamespace, 3), Command{Opcode: 0x06, NSID: 3, DataLen: 4096}},
		{"get features fdp", FDPFeatureCmd(1), Command{Opcode: 0x0A, CDW10: 0x1D, CDW11: 1}},
		// 4 KiB is 1024 dwords, 1023 0-based, all in NUMDL.
		{"configs log", LogPageCmd(LogFDPConfigs, 0, 1, 0, 4096), Command{Opcode: 0x02, CDW10: 1023<<16 | 0x20, CDW11: 1 << 16, DataLen: 4096}},
		// NUMD 0x12345 splits into NUMDL 0x2345 and NUMDU 1; LSP 1 is bit 8; the offset
		// 0x1_0000_0008 goes to CDW12 (low) and CDW13 (high).
		{"events log", LogPageCmd(LogFDPEvents, 1, 2, 0x1_0000_0008, 4*0x12346), Command{
			Opcode: 0x02, CDW10: 0x2345<<16 | 1<<8 | 0x23, CDW11: 2<<16 | 1, CDW12: 8, CDW13: 1, DataLen: 4 * 0x12346,
		}},
		{"ruh status", RUHStatusCmd(1, 4096), Command{Opcode: 0x12, NSID: 1, CDW10: 1, CDW11: 1023, DataLen: 4096}},
		{"io mgmt recv mos", IOMgmtRecvCmd(1, 1, 0xBEEF, 16), Command{Opcode: 0x12, NSID: 1, CDW10: 0xBEEF<<16 | 1, CDW11: 3, DataLen: 16}},
	} {
		if tc.c != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.c, tc.want)
		}
	}
}

func FuzzCommand(f *testing.F) {
	var seed [80]byte
	c := WriteCmd(1, 42, 512, 3)
	c.Encode(&seed)
	f.Add(seed[:])
	f.Add(make([]byte, 80))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 80 {
			return
		}
		src := (*[80]byte)(b)
		c := DecodeCommand(src)
		var dst [80]byte
		c.Encode(&dst)
		if DecodeCommand(&dst) != c {
			t.Fatalf("decode(encode(c)) != c for %+v", c)
		}
		// Encode keeps what DecodeCommand reads and zeroes the rest.
		for i := range dst {
			known := i == 0 || (i >= 4 && i < 68)
			if known && dst[i] != src[i] || !known && dst[i] != 0 {
				t.Fatalf("byte %d: %#x from %#x", i, dst[i], src[i])
			}
		}
	})
}
