package uring

// This file uses unsafe for two reasons only: to put a buffer's address into an SQE (the kernel
// takes addresses as u64) and to write the u32 cmd_op at SQE offset 8 whatever the byte order.

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// SQE is one submission queue entry, laid out exactly as struct io_uring_sqe (64 bytes). The
// unions of the C struct are reduced to the members kvresp uses; the offsets are checked by
// TestLayout. In a ring set up with SQE128 each entry is 128 bytes: this struct is its first
// half, and Ring.Cmd gives the 80-byte command area that starts at offset 48.
//
// An *SQE comes from Ring.GetSQE, fully zeroed. Call one Prep method, then any setters, in any
// order; the prep methods leave UserData, flags, ioprio and the write stream alone.
type SQE struct {
	opcode      uint8  // 0
	flags       uint8  // 1: IOSQE_*
	ioprio      uint16 // 2
	fd          int32  // 4
	off         uint64 // 8: off, addr2, or cmd_op u32 + __pad1 u32 for URING_CMD
	addr        uint64 // 16: buffer, iovec array, or fallocate length
	len         uint32 // 24: buffer length, iovec count, or fallocate mode
	opFlags     uint32 // 28: rw_flags, fsync_flags, uring_cmd_flags ...
	userData    uint64 // 32
	bufIndex    uint16 // 40: buf_index / buf_group
	_           uint16 // 42: personality
	writeStream uint8  // 44: write_stream (Linux 6.16+); also the low byte of file_index
	_           [3]uint8
	_           uint64 // 48: addr3; in SQE128 rings the 80-byte command area starts here
	_           uint64 // 56
}

func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

func (s *SQE) prepRW(op Op, fd int32, addr uint64, n uint32, off uint64) {
	s.opcode = uint8(op)
	s.fd = fd
	s.addr = addr
	s.len = n
	s.off = off
}

// PrepNop makes s a no-op: it completes with Res 0.
func (s *SQE) PrepNop() { s.opcode = uint8(OpNop) }

// PrepRead reads len(buf) bytes at off of fd into buf (IORING_OP_READ). buf must stay put and
// alive until the completion (see the package doc); with O_DIRECT it must be aligned too.
func (s *SQE) PrepRead(fd int32, buf []byte, off uint64) {
	s.prepRW(OpRead, fd, addrOf(buf), uint32(len(buf)), off)
}

// PrepWrite writes buf at off of fd (IORING_OP_WRITE).
func (s *SQE) PrepWrite(fd int32, buf []byte, off uint64) {
	s.prepRW(OpWrite, fd, addrOf(buf), uint32(len(buf)), off)
}

// PrepReadFixed reads into buf, which must lie inside registered buffer bufIndex
// (IORING_OP_READ_FIXED).
func (s *SQE) PrepReadFixed(fd int32, buf []byte, off uint64, bufIndex uint16) {
	s.prepRW(OpReadFixed, fd, addrOf(buf), uint32(len(buf)), off)
	s.bufIndex = bufIndex
}

// PrepWriteFixed writes buf, which must lie inside registered buffer bufIndex
// (IORING_OP_WRITE_FIXED).
func (s *SQE) PrepWriteFixed(fd int32, buf []byte, off uint64, bufIndex uint16) {
	s.prepRW(OpWriteFixed, fd, addrOf(buf), uint32(len(buf)), off)
	s.bufIndex = bufIndex
}

// PrepReadv reads into the buffers iovs describes (IORING_OP_READV). The iovec array itself must
// stay put until the completion, like the buffers.
func (s *SQE) PrepReadv(fd int32, iovs []unix.Iovec, off uint64) {
	s.prepRW(OpReadv, fd, uint64(uintptr(unsafe.Pointer(unsafe.SliceData(iovs)))), uint32(len(iovs)), off)
}

// PrepWritev writes the buffers iovs describes (IORING_OP_WRITEV).
func (s *SQE) PrepWritev(fd int32, iovs []unix.Iovec, off uint64) {
	s.prepRW(OpWritev, fd, uint64(uintptr(unsafe.Pointer(unsafe.SliceData(iovs)))), uint32(len(iovs)), off)
}

// PrepFsync flushes fd (IORING_OP_FSYNC); flags FsyncDatasync makes it an fdatasync.
func (s *SQE) PrepFsync(fd int32, flags uint32) {
	s.opcode = uint8(OpFsync)
	s.fd = fd
	s.opFlags = flags
}

// PrepFallocate runs fallocate(fd, mode, off, length) (IORING_OP_FALLOCATE); for example mode
// unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE deallocates a range. The kernel takes the
// length from sqe->addr and the mode from sqe->len.
func (s *SQE) PrepFallocate(fd int32, mode uint32, off, length uint64) {
	s.prepRW(OpFallocate, fd, length, mode, off)
}

// PrepURingCmd makes s a driver command (IORING_OP_URING_CMD) with command number cmdOp, for
// example NVME_URING_CMD_IO. cmd_op is the u32 at offset 8 and the u32 at 12 must stay zero (the
// kernel answers -EINVAL otherwise). The command itself goes into Ring.Cmd(s); NVMe passthrough
// needs a ring with both SQE128 and CQE32.
func (s *SQE) PrepURingCmd(fd int32, cmdOp uint32) {
	s.opcode = uint8(OpURingCmd)
	s.fd = fd
	p := (*[2]uint32)(unsafe.Pointer(&s.off))
	p[0] = cmdOp
	p[1] = 0
}

// SetURingCmdFixed makes a URING_CMD use registered buffer bufIndex (IORING_URING_CMD_FIXED at
// offset 28, buf_index at 40).
func (s *SQE) SetURingCmdFixed(bufIndex uint16) {
	s.opFlags |= URingCmdFixed
	s.bufIndex = bufIndex
}

// SetUserData sets the value the completion carries back in CQE.UserData.
func (s *SQE) SetUserData(v uint64) { s.userData = v }

// SetFlags replaces the IOSQE_* flags (IOSQEFixedFile, IOSQEIOLink, IOSQEAsync ...).
func (s *SQE) SetFlags(f uint8) { s.flags = f }

// SetIOPrio sets the I/O priority (ioprio_set(2) encoding).
func (s *SQE) SetIOPrio(p uint16) { s.ioprio = p }

// SetRWFlags sets the per-op flags word at offset 28: RWF_* for reads and writes (for example
// unix.RWF_DSYNC), replacing what a Prep method put there.
func (s *SQE) SetRWFlags(f uint32) { s.opFlags = f }

// SetBufIndex sets buf_index (offset 40) by hand.
func (s *SQE) SetBufIndex(i uint16) { s.bufIndex = i }

// SetWriteStream sets write_stream (u8 at offset 44): the block layer's placement hint for a
// write, Linux 6.16 and later. Older kernels ignore it for files and reject it for devices that
// lack streams; see /sys/block/*/queue/max_write_streams.
func (s *SQE) SetWriteStream(ws uint8) { s.writeStream = ws }

// Opcode returns the op s was prepared for.
func (s *SQE) Opcode() Op { return Op(s.opcode) }

// UserData returns the value set by SetUserData.
func (s *SQE) UserData() uint64 { return s.userData }

// Flags returns the IOSQE_* flags.
func (s *SQE) Flags() uint8 { return s.flags }
