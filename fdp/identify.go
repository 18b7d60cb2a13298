package fdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// ErrTruncated is wrapped by every parser error about input shorter than the structure it
// describes.
var ErrTruncated = errors.New("fdp: truncated page")

// ErrCorrupt is wrapped by every parser error about fields that contradict each other.
var ErrCorrupt = errors.New("fdp: inconsistent page")

// MinPageSize is the memory page size MDTS is counted in when the controller's CAP.MPSMIN is
// unknown. CAP is a controller register that user space cannot read through the character
// devices, and 4 KiB is the smallest page size NVMe allows (MPSMIN 0), which is what QEMU and
// nearly every drive report; on a drive with a larger MPSMIN the real limit is larger.
const MinPageSize = 4096

// IDController is what kvresp reads from the Identify Controller data structure (CNS 1).
type IDController struct {
	VendorID          uint16 `json:"vendor_id"`           // VID, bytes 1:0
	SubsystemVendorID uint16 `json:"subsystem_vendor_id"` // SSVID, bytes 3:2
	Serial            string `json:"serial"`              // SN, bytes 23:4
	Model             string `json:"model"`               // MN, bytes 63:24
	Firmware          string `json:"firmware"`            // FR, bytes 71:64
	// MDTS (byte 77) is the maximum data transfer size as a power of two in units of the
	// controller's minimum memory page size; 0 means no limit.
	MDTS uint8 `json:"mdts"`
	// MaxTransfer is MDTS in bytes, 2^MDTS × MinPageSize (see MinPageSize); 0 means no limit.
	MaxTransfer  uint64 `json:"max_transfer"`
	ControllerID uint16 `json:"controller_id"` // CNTLID, bytes 79:78
	Version      uint32 `json:"version"`       // VER, bytes 83:80
	CTRATT       uint32 `json:"ctratt"`        // controller attributes, bytes 99:96
	// FDPSupported is CTRATT bit 19: the controller supports Flexible Data Placement.
	FDPSupported bool   `json:"fdp_supported"`
	EndGIDMax    uint16 `json:"endgidmax"`  // bytes 341:340, the largest endurance group ID
	Namespaces   uint32 `json:"namespaces"` // NN, bytes 519:516
	ONCS         uint16 `json:"oncs"`       // optional NVM command support, bytes 521:520
	SubNQN       string `json:"subnqn"`     // bytes 1023:768
}

// DSMSupported reports ONCS bit 2: the controller supports Dataset Management.
func (c *IDController) DSMSupported() bool { return c.ONCS&(1<<2) != 0 }

// VersionString formats VER as "major.minor.tertiary".
func (c *IDController) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", c.Version>>16, (c.Version>>8)&0xFF, c.Version&0xFF)
}

// ParseIDController parses an Identify Controller data structure (4096 bytes).
func ParseIDController(b []byte) (*IDController, error) {
	if len(b) < IdentifySize {
		return nil, fmt.Errorf("%w: identify controller data is %d bytes, want %d", ErrTruncated, len(b), IdentifySize)
	}
	le := binary.LittleEndian
	c := &IDController{
		VendorID:          le.Uint16(b[0:]),
		SubsystemVendorID: le.Uint16(b[2:]),
		Serial:            ascii(b[4:24]),
		Model:             ascii(b[24:64]),
		Firmware:          ascii(b[64:72]),
		MDTS:              b[77],
		ControllerID:      le.Uint16(b[78:]),
		Version:           le.Uint32(b[80:]),
		CTRATT:            le.Uint32(b[96:]),
		EndGIDMax:         le.Uint16(b[340:]),
		Namespaces:        le.Uint32(b[516:]),
		ONCS:              le.Uint16(b[520:]),
		SubNQN:            ascii(b[768:1024]),
	}
	c.FDPSupported = c.CTRATT&(1<<19) != 0
	c.MaxTransfer = mdtsBytes(c.MDTS)
	return c, nil
}

// mdtsBytes converts MDTS to bytes; a limit too large for a uint64 is no limit at all.
func mdtsBytes(mdts uint8) uint64 {
	if mdts == 0 || mdts >= 64-12 {
		return 0
	}
	return MinPageSize << mdts
}

// ascii returns a space- or NUL-padded ASCII field of an identify structure, with anything
// unprintable replaced by '?', so that a broken device cannot put control characters on a
// terminal.
func ascii(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < 0x20 || c > 0x7E {
			c = '?'
		}
		s.WriteByte(c)
	}
	return strings.TrimRight(s.String(), " ")
}

// IDNamespace is what kvresp reads from the Identify Namespace data structure (CNS 0).
type IDNamespace struct {
	Size        uint64 `json:"nsze"` // NSZE: logical blocks in the namespace
	Capacity    uint64 `json:"ncap"` // NCAP: blocks that may be allocated
	Utilization uint64 `json:"nuse"` // NUSE: blocks allocated
	// Formats is the number of LBA formats (NLBAF + 1).
	Formats int   `json:"lba_formats"`
	FLBAS   uint8 `json:"flbas"`
	// FormatIndex is the LBA format in use: FLBAS bits 3:0, with bits 6:5 as bits 5:4 when
	// there are more than 16 formats.
	FormatIndex  uint8  `json:"lba_format"`
	LBADS        uint8  `json:"lbads"`         // the format's LBA data size as a power of two
	LBASize      uint32 `json:"lba_size"`      // 2^LBADS bytes
	MetadataSize uint16 `json:"metadata_size"` // the format's metadata bytes per block
	DLFEAT       uint8  `json:"dlfeat"`        // deallocate logical block features, byte 33
	NVMSetID     uint16 `json:"nvmsetid"`      // bytes 101:100
	EndGID       uint16 `json:"endgid"`        // ENDGID, bytes 103:102: the endurance group
}

// DeallocatedReadsZeroes reports DLFEAT bits 2:0 = 001b: a deallocated block reads as zeroes.
func (n *IDNamespace) DeallocatedReadsZeroes() bool { return n.DLFEAT&0x7 == 1 }

// Bytes returns the namespace's size in bytes.
func (n *IDNamespace) Bytes() uint64 { return n.Size * uint64(n.LBASize) }

// ParseIDNamespace parses an Identify Namespace data structure (4096 bytes).
func ParseIDNamespace(b []byte) (*IDNamespace, error) {
	if len(b) < IdentifySize {
		return nil, fmt.Errorf("%w: identify namespace data is %d bytes, want %d", ErrTruncated, len(b), IdentifySize)
	}
	le := binary.LittleEndian
	n := &IDNamespace{
		Size:        le.Uint64(b[0:]),
		Capacity:    le.Uint64(b[8:]),
		Utilization: le.Uint64(b[16:]),
		Formats:     int(b[25]) + 1,
		FLBAS:       b[26],
		DLFEAT:      b[33],
		NVMSetID:    le.Uint16(b[100:]),
		EndGID:      le.Uint16(b[102:]),
	}
	// 64 formats at most (NLBAF 63), each 4 bytes from byte 128.
	if n.Formats > 64 {
		return nil, fmt.Errorf("%w: NLBAF %d is over the limit of 63", ErrCorrupt, n.Formats-1)
	}
	n.FormatIndex = n.FLBAS & 0xF
	if n.Formats > 16 {
		n.FormatIndex |= (n.FLBAS >> 5 & 0x3) << 4
	}
	if int(n.FormatIndex) >= n.Formats {
		return nil, fmt.Errorf("%w: FLBAS selects LBA format %d of %d", ErrCorrupt, n.FormatIndex, n.Formats)
	}
	f := b[128+4*int(n.FormatIndex):]
	n.MetadataSize = le.Uint16(f[0:])
	n.LBADS = f[2]
	// 512 bytes is the smallest LBA size NVMe allows; past 2^31 the size does not fit a u32
	// and no device comes near it.
	if n.LBADS < 9 || n.LBADS > 31 {
		return nil, fmt.Errorf("%w: LBA format %d has LBADS %d, want 9 to 31", ErrCorrupt, n.FormatIndex, n.LBADS)
	}
	n.LBASize = 1 << n.LBADS
	if n.Size > math.MaxUint64>>n.LBADS {
		return nil, fmt.Errorf("%w: NSZE %d blocks of %d bytes overflows", ErrCorrupt, n.Size, n.LBASize)
	}
	return n, nil
}
