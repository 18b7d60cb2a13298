package uring

import (
	"encoding/binary"
	"errors"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// TestSQELayout checks where the setters put their values, against the offsets of struct
// io_uring_sqe in include/uapi/linux/io_uring.h (and the kernel's BUILD_BUG_SQE_ELEM checks).
func TestSQELayout(t *testing.T) {
	if unsafe.Sizeof(SQE{}) != 64 {
		t.Fatalf("SQE is %d bytes, want 64", unsafe.Sizeof(SQE{}))
	}
	ne := binary.NativeEndian
	buf := make([]byte, 4096)
	var s SQE
	raw := (*[64]byte)(unsafe.Pointer(&s))

	s.PrepReadFixed(-7, buf[100:300], 0x1122334455667788, 0x3344)
	s.SetFlags(IOSQEFixedFile | IOSQEIOLink)
	s.SetIOPrio(0x0102)
	s.SetUserData(0xdeadbeefcafef00d)
	s.SetRWFlags(0x55)
	s.SetWriteStream(9)
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"opcode@0", uint64(raw[0]), uint64(OpReadFixed)},
		{"flags@1", uint64(raw[1]), uint64(IOSQEFixedFile | IOSQEIOLink)},
		{"ioprio@2", uint64(ne.Uint16(raw[2:])), 0x0102},
		{"fd@4", uint64(ne.Uint32(raw[4:])), uint64(^uint32(6))}, // -7 as a u32
		{"off@8", ne.Uint64(raw[8:]), 0x1122334455667788},
		{"addr@16", ne.Uint64(raw[16:]), uint64(uintptr(unsafe.Pointer(&buf[100])))},
		{"len@24", uint64(ne.Uint32(raw[24:])), 200},
		{"rw_flags@28", uint64(ne.Uint32(raw[28:])), 0x55},
		{"user_data@32", ne.Uint64(raw[32:]), 0xdeadbeefcafef00d},
		{"buf_index@40", uint64(ne.Uint16(raw[40:])), 0x3344},
		{"write_stream@44", uint64(raw[44]), 9},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}

	s = SQE{}
	s.PrepFallocate(3, 0x3, 4096, 1<<20)
	if raw[0] != byte(OpFallocate) || ne.Uint64(raw[8:]) != 4096 || ne.Uint64(raw[16:]) != 1<<20 || ne.Uint32(raw[24:]) != 3 {
		t.Errorf("FALLOCATE: off, addr (length), len (mode) wrong: % x", raw[:32])
	}

	s = SQE{}
	s.PrepFsync(5, FsyncDatasync)
	if raw[0] != byte(OpFsync) || ne.Uint32(raw[28:]) != 1 {
		t.Errorf("FSYNC: fsync_flags wrong: % x", raw[:32])
	}

	// URING_CMD: cmd_op is the u32 at 8, and the u32 at 12 must be zero even if off was set.
	s = SQE{}
	s.off = ^uint64(0)
	s.PrepURingCmd(4, 0xC0484E80)
	s.SetURingCmdFixed(2)
	if raw[0] != 46 || ne.Uint32(raw[4:]) != 4 || ne.Uint32(raw[8:]) != 0xC0484E80 || ne.Uint32(raw[12:]) != 0 {
		t.Errorf("URING_CMD header wrong: % x", raw[:16])
	}
	if ne.Uint32(raw[28:]) != URingCmdFixed || ne.Uint16(raw[40:]) != 2 {
		t.Errorf("URING_CMD fixed buffer wrong: flags %#x buf_index %d", ne.Uint32(raw[28:]), ne.Uint16(raw[40:]))
	}
}

func TestCQEErr(t *testing.T) {
	if err := (CQE{Res: 4096}).Err(); err != nil {
		t.Errorf("Res 4096: %v", err)
	}
	if err := (CQE{Res: -int32(syscall.EBADF)}).Err(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Res -EBADF: %v", err)
	}
}

func TestParamsValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Params
		want []string // substrings of the error; none means valid
	}{
		{"zero value", Params{}, nil},
		{"nvme ring", Params{Entries: 64, SQE128: true, CQE32: true, SingleIssuer: true, DeferTaskrun: true}, nil},
		{"sqpoll", Params{SQPoll: true, SQThreadIdleMs: 10, SQAff: true, SQThreadCPU: 1}, nil},
		{"clamped", Params{Entries: 1 << 20, CQEntries: 1 << 21, Clamp: true}, nil},
		{"too many entries", Params{Entries: 1 << 20}, []string{"over the kernel's limit of 32768"}},
		{"small CQ", Params{Entries: 64, CQEntries: 32}, []string{"fewer than the 64 SQ entries"}},
		{"sq thread options without sqpoll", Params{SQAff: true, SQThreadIdleMs: 5}, []string{"SQAff", "SQThreadIdleMs"}},
		{"defer without single issuer", Params{DeferTaskrun: true}, []string{"needs SingleIssuer"}},
		{"sqpoll with taskrun flags", Params{SQPoll: true, CoopTaskrun: true}, []string{"SQPoll does not go"}},
		{"every problem at once", Params{Entries: 1 << 20, DeferTaskrun: true, SQAff: true}, []string{"limit", "SingleIssuer", "SQAff"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
