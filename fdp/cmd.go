package fdp

import (
	"encoding/binary"
	"fmt"
)

// Command numbers for IORING_OP_URING_CMD on an NVMe character device (sqe cmd_op):
// _IOWR('N', 0x80 or 0x82, struct nvme_uring_cmd), the struct being 72 bytes.
const (
	NVME_URING_CMD_IO    uint32 = 0xC0484E80 // I/O command, on /dev/ngXnY
	NVME_URING_CMD_ADMIN uint32 = 0xC0484E82 // admin command, on /dev/nvmeX
)

// nvmeIoctlID is NVME_IOCTL_ID, _IO('N', 0x40): the namespace ID of a namespace device.
const nvmeIoctlID = 0x4E40

// NVM command set I/O opcodes, then admin opcodes.
const (
	OpFlush          uint8 = 0x00
	OpWrite          uint8 = 0x01
	OpRead           uint8 = 0x02
	OpDSM            uint8 = 0x09 // Dataset Management
	OpIOMgmtRecv     uint8 = 0x12 // I/O Management Receive
	AdminGetLog      uint8 = 0x02 // Get Log Page
	AdminIdentify    uint8 = 0x06
	AdminGetFeatures uint8 = 0x0A
)

// Identify CNS values, the Get Features identifier and the log page identifiers FDP uses.
const (
	CNSNamespace  uint8 = 0x00
	CNSController uint8 = 0x01

	FeatureFDP uint8 = 0x1D // Flexible Data Placement (endurance group scoped)

	LogFDPConfigs uint8 = 0x20
	LogRUHUsage   uint8 = 0x21
	LogFDPStats   uint8 = 0x22
	LogFDPEvents  uint8 = 0x23

	// MORUHStatus is the I/O Management Receive operation that returns the reclaim unit
	// handle status.
	MORUHStatus uint8 = 0x01
)

// IdentifySize is the size of every Identify data structure.
const IdentifySize = 4096

// dtypePlacement is the directive type "data placement" in CDW12 bits 23:20 of a write.
const dtypePlacement = 2

// maxBlocks is the most logical blocks one Read or Write moves: NLB is a 0-based 16-bit field.
const maxBlocks = 1 << 16

// Command is struct nvme_uring_cmd, the 72 bytes at offset 48 of a 128-byte SQE. The flags byte
// (offset 1) is always 0: the kernel rejects anything else. Addr and DataLen describe the data
// buffer, which must stay mapped and in place until the completion (see MapBuffer).
type Command struct {
	Opcode      uint8
	NSID        uint32
	CDW2, CDW3  uint32
	Metadata    uint64 // address of a separate metadata buffer
	Addr        uint64 // address of the data buffer
	MetadataLen uint32
	DataLen     uint32
	CDW10       uint32
	CDW11       uint32
	CDW12       uint32
	CDW13       uint32
	CDW14       uint32
	CDW15       uint32
	TimeoutMS   uint32 // 0: the driver's default timeout
}

// Encode writes c into the command area of a SQE128 entry (uring.Ring.Cmd), zeroing the bytes
// c does not use.
func (c *Command) Encode(dst *[80]byte) {
	*dst = [80]byte{}
	le := binary.LittleEndian
	dst[0] = c.Opcode
	le.PutUint32(dst[4:], c.NSID)
	le.PutUint32(dst[8:], c.CDW2)
	le.PutUint32(dst[12:], c.CDW3)
	le.PutUint64(dst[16:], c.Metadata)
	le.PutUint64(dst[24:], c.Addr)
	le.PutUint32(dst[32:], c.MetadataLen)
	le.PutUint32(dst[36:], c.DataLen)
	le.PutUint32(dst[40:], c.CDW10)
	le.PutUint32(dst[44:], c.CDW11)
	le.PutUint32(dst[48:], c.CDW12)
	le.PutUint32(dst[52:], c.CDW13)
	le.PutUint32(dst[56:], c.CDW14)
	le.PutUint32(dst[60:], c.CDW15)
	le.PutUint32(dst[64:], c.TimeoutMS)
}

// DecodeCommand reads what Encode wrote; an in-memory device uses it to see the command.
func DecodeCommand(src *[80]byte) Command {
	le := binary.LittleEndian
	return Command{
		Opcode:      src[0],
		NSID:        le.Uint32(src[4:]),
		CDW2:        le.Uint32(src[8:]),
		CDW3:        le.Uint32(src[12:]),
		Metadata:    le.Uint64(src[16:]),
		Addr:        le.Uint64(src[24:]),
		MetadataLen: le.Uint32(src[32:]),
		DataLen:     le.Uint32(src[36:]),
		CDW10:       le.Uint32(src[40:]),
		CDW11:       le.Uint32(src[44:]),
		CDW12:       le.Uint32(src[48:]),
		CDW13:       le.Uint32(src[52:]),
		CDW14:       le.Uint32(src[56:]),
		CDW15:       le.Uint32(src[60:]),
		TimeoutMS:   le.Uint32(src[64:]),
	}
}

// rw builds a Read or Write of blocks logical blocks from slba. Addr and DataLen are left for
// the caller (Exec sets them from the buffer): DataLen must be blocks × the LBA size, which the
// kernel does not check and the device answers with a status when wrong.
func rw(op uint8, nsid uint32, slba uint64, blocks uint32) Command {
	if blocks == 0 || blocks > maxBlocks {
		panic(fmt.Sprintf("BUG: fdp: %d blocks in one command; want 1 to %d", blocks, maxBlocks))
	}
	return Command{
		Opcode: op,
		NSID:   nsid,
		CDW10:  uint32(slba),
		CDW11:  uint32(slba >> 32),
		CDW12:  blocks - 1, // NLB, 0-based
	}
}

// FlushCmd commits the namespace's volatile write cache to media.
func FlushCmd(nsid uint32) Command { return Command{Opcode: OpFlush, NSID: nsid} }

// ReadCmd reads blocks logical blocks (1 to 65536) starting at slba.
func ReadCmd(nsid uint32, slba uint64, blocks uint32) Command {
	return rw(OpRead, nsid, slba, blocks)
}

// WriteCmd writes blocks logical blocks (1 to 65536) at slba. A pid of 0 to 65535 places the data
// with that placement ID (DTYPE 2 in CDW12, DSPEC in CDW13 bits 31:16); -1 writes without a
// placement. A PID the namespace does not have is not an error on every device (QEMU writes it
// to PID 0): check it against the RUH status first (ParsePIDs).
func WriteCmd(nsid uint32, slba uint64, blocks uint32, pid int) Command {
	c := rw(OpWrite, nsid, slba, blocks)
	switch {
	case pid >= 0 && pid <= 0xFFFF:
		c.CDW12 |= dtypePlacement << 20
		c.CDW13 = uint32(pid) << 16
	case pid != -1:
		panic(fmt.Sprintf("BUG: fdp: placement ID %d; want -1 or 0 to 65535", pid))
	}
	return c
}

// DSMRange is one range of a Dataset Management command.
type DSMRange struct {
	Attr   uint32 // context attributes; 0 for a deallocate
	Blocks uint32 // length in logical blocks (1-based, unlike a read's NLB)
	SLBA   uint64
}

// DSMRangeSize is the size of one encoded DSMRange; a command takes at most MaxDSMRanges.
const (
	DSMRangeSize = 16
	MaxDSMRanges = 256
)

// PutDSMRanges encodes rs into dst (16 bytes each: attributes u32, length u32, starting LBA
// u64) and returns the bytes written: the DataLen of the Dataset Management command.
func PutDSMRanges(dst []byte, rs []DSMRange) (int, error) {
	if len(rs) == 0 || len(rs) > MaxDSMRanges {
		return 0, fmt.Errorf("fdp: %d dataset management ranges; want 1 to %d", len(rs), MaxDSMRanges)
	}
	n := len(rs) * DSMRangeSize
	if len(dst) < n {
		return 0, fmt.Errorf("fdp: %d ranges need %d bytes, the buffer has %d", len(rs), n, len(dst))
	}
	le := binary.LittleEndian
	for i, r := range rs {
		b := dst[i*DSMRangeSize:]
		le.PutUint32(b[0:], r.Attr)
		le.PutUint32(b[4:], r.Blocks)
		le.PutUint64(b[8:], r.SLBA)
	}
	return n, nil
}

// DeallocateCmd is a Dataset Management command with the Deallocate attribute (AD, CDW11 bit 2)
// over nranges ranges (1 to 256) that the data buffer holds, encoded by PutDSMRanges.
func DeallocateCmd(nsid uint32, nranges int) Command {
	if nranges < 1 || nranges > MaxDSMRanges {
		panic(fmt.Sprintf("BUG: fdp: %d dataset management ranges; want 1 to %d", nranges, MaxDSMRanges))
	}
	return Command{
		Opcode:  OpDSM,
		NSID:    nsid,
		CDW10:   uint32(nranges - 1), // NR, 0-based
		CDW11:   1 << 2,              // AD
		DataLen: uint32(nranges * DSMRangeSize),
	}
}

// IdentifyCmd returns Identify data structure cns (CNSController, or CNSNamespace for nsid):
// 4096 bytes.
func IdentifyCmd(cns uint8, nsid uint32) Command {
	return Command{Opcode: AdminIdentify, NSID: nsid, CDW10: uint32(cns), DataLen: IdentifySize}
}

// GetFeaturesCmd reads the current value of feature fid; the value comes back in the
// completion's result (the low 32 bits for most features).
func GetFeaturesCmd(fid uint8, nsid, cdw11 uint32) Command {
	return Command{Opcode: AdminGetFeatures, NSID: nsid, CDW10: uint32(fid), CDW11: cdw11}
}

// FDPFeatureCmd reads the Flexible Data Placement feature of endurance group endgid; see
// ParseFDPFeature for its result.
func FDPFeatureCmd(endgid uint16) Command {
	return GetFeaturesCmd(FeatureFDP, 0, uint32(endgid))
}

// checkLen panics unless n is a valid transfer length for a command counted in dwords.
func checkLen(n uint32) {
	if n == 0 || n%4 != 0 {
		panic(fmt.Sprintf("BUG: fdp: a transfer of %d bytes; want a non-zero multiple of 4", n))
	}
}

// LogPageCmd reads length bytes (a non-zero multiple of 4) of log page lid from byte offset
// (a multiple of 4). lsp is the log specific parameter (CDW10 bits 14:8; for the FDP events
// log, 1 selects host events), lsi the log specific identifier (CDW11 bits 31:16; the endurance
// group for the FDP logs). The dword count is split into NUMDL (CDW10 bits 31:16) and NUMDU
// (CDW11 bits 15:0); the offset goes into CDW12 and CDW13. NSID is 0: the FDP logs belong to
// an endurance group, not a namespace.
func LogPageCmd(lid, lsp uint8, lsi uint16, offset uint64, length uint32) Command {
	checkLen(length)
	numd := length/4 - 1
	return Command{
		Opcode:  AdminGetLog,
		CDW10:   uint32(lid) | uint32(lsp&0x7F)<<8 | (numd&0xFFFF)<<16,
		CDW11:   numd>>16 | uint32(lsi)<<16,
		CDW12:   uint32(offset),
		CDW13:   uint32(offset >> 32),
		DataLen: length,
	}
}

// IOMgmtRecvCmd is I/O Management Receive operation mo (CDW10 bits 7:0) with operation
// specific mos (CDW10 bits 31:16) returning length bytes (NUMD, 0-based dwords, in CDW11).
func IOMgmtRecvCmd(nsid uint32, mo uint8, mos uint16, length uint32) Command {
	checkLen(length)
	return Command{
		Opcode:  OpIOMgmtRecv,
		NSID:    nsid,
		CDW10:   uint32(mo) | uint32(mos)<<16,
		CDW11:   length/4 - 1,
		DataLen: length,
	}
}

// RUHStatusCmd reads the reclaim unit handle status of namespace nsid; see ParseRUHStatus.
func RUHStatusCmd(nsid uint32, length uint32) Command {
	return IOMgmtRecvCmd(nsid, MORUHStatus, 0, length)
}
