package fdp

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
)

// The layouts below are TP4146 (Flexible Data Placement), now in the NVMe base specification
// 2.0c and later; all fields little-endian.

// FDPFeature is the current value of the FDP feature (Get Features 0x1D), from the completion's
// result dword 0.
type FDPFeature struct {
	Enabled     bool  `json:"enabled"`      // FDPE, bit 0
	ConfigIndex uint8 `json:"config_index"` // FDPCIDX, bits 15:8: the configuration in use
}

// ParseFDPFeature decodes dword 0 of a Get Features FDP completion.
func ParseFDPFeature(dw0 uint32) FDPFeature {
	return FDPFeature{Enabled: dw0&1 != 0, ConfigIndex: uint8(dw0 >> 8)}
}

// Reclaim unit handle types (RUHT).
const (
	RUHTInitiallyIsolated    uint8 = 1
	RUHTPersistentlyIsolated uint8 = 2
)

// RUHTypeName names a reclaim unit handle type.
func RUHTypeName(t uint8) string {
	switch t {
	case RUHTInitiallyIsolated:
		return "initially isolated"
	case RUHTPersistentlyIsolated:
		return "persistently isolated"
	}
	return "type " + strconv.Itoa(int(t))
}

// FDPConfig is one FDP configuration descriptor of log page 0x20.
type FDPConfig struct {
	Index int `json:"index"` // position in the log: what FDPFeature.ConfigIndex names
	// DescriptorSize is DSZE (bytes 1:0): the descriptor's bytes, its RUH descriptors and
	// vendor specific bytes included.
	DescriptorSize uint16 `json:"descriptor_size"`
	FDPA           uint8  `json:"fdpa"` // attributes, byte 2
	// RGIF is FDPA bits 3:0, the reclaim group identifier format: how many high bits of a
	// placement identifier select the reclaim group.
	RGIF uint8 `json:"rgif"`
	// VolatileWriteCache is FDPA bit 4: the FDP volatile write cache is present.
	VolatileWriteCache bool   `json:"volatile_write_cache"`
	Valid              bool   `json:"valid"` // FDPA bit 7: the configuration is valid
	VendorSize         uint8  `json:"vss"`   // VSS, byte 3: vendor specific bytes after the RUH descriptors
	ReclaimGroups      uint32 `json:"nrg"`   // NRG, bytes 7:4
	Handles            uint16 `json:"nruh"`  // NRUH, bytes 9:8: reclaim unit handles
	// MaxPIDs is MAXPIDS + 1 (bytes 11:10 hold it 0-based): the most placement identifiers a
	// namespace may have.
	MaxPIDs uint32 `json:"maxpids"`
	// Namespaces is NNSS (bytes 15:12): how many namespaces the configuration supports.
	Namespaces uint32 `json:"nnss"`
	// RUSize is RUNS (bytes 23:16): the nominal reclaim unit size in bytes.
	RUSize uint64 `json:"runs"`
	// RUTimeLimit is ERUTL (bytes 27:24): seconds a reclaim unit may stay open before the
	// controller moves the handle on; 0 means not reported.
	RUTimeLimit uint32 `json:"erutl"`
	// RUHs are the reclaim unit handle descriptors (4 bytes each, from byte 64), indexed by
	// reclaim unit handle identifier.
	RUHs []RUHDesc `json:"ruhs"`
}

// RUHDesc is a reclaim unit handle descriptor of an FDP configuration.
type RUHDesc struct {
	Type uint8 `json:"ruht"` // RUHT, byte 0: RUHTInitiallyIsolated or RUHTPersistentlyIsolated
}

// FDPConfigLog is log page 0x20, the FDP configurations of an endurance group.
type FDPConfigLog struct {
	Version uint8       `json:"version"` // byte 2
	Size    uint32      `json:"size"`    // SZE, bytes 7:4: the whole log in bytes
	Configs []FDPConfig `json:"configs"` // NUMFDPC (bytes 1:0) + 1 descriptors from byte 16
}

const (
	configLogHeader = 16
	configDescFixed = 64
	ruhDescSize     = 4
)

// ParseFDPConfigLog parses log page 0x20. b must hold the whole log (Size bytes).
func ParseFDPConfigLog(b []byte) (*FDPConfigLog, error) {
	if len(b) < configLogHeader {
		return nil, fmt.Errorf("%w: FDP configurations log is %d bytes, the header alone is %d", ErrTruncated, len(b), configLogHeader)
	}
	le := binary.LittleEndian
	l := &FDPConfigLog{Version: b[2], Size: le.Uint32(b[4:])}
	n := int(le.Uint16(b[0:])) + 1
	switch {
	case l.Size < configLogHeader:
		return nil, fmt.Errorf("%w: FDP configurations log size %d is below its header's %d", ErrCorrupt, l.Size, configLogHeader)
	case uint64(l.Size) > uint64(len(b)):
		return nil, fmt.Errorf("%w: FDP configurations log is %d bytes of %d", ErrTruncated, len(b), l.Size)
	case uint64(n)*configDescFixed > uint64(l.Size)-configLogHeader:
		return nil, fmt.Errorf("%w: %d FDP configurations do not fit in %d bytes", ErrCorrupt, n, l.Size)
	}
	b = b[:l.Size]
	l.Configs = make([]FDPConfig, 0, n)
	off := configLogHeader
	for i := range n {
		if len(b)-off < configDescFixed {
			return nil, fmt.Errorf("%w: FDP configuration %d starts at byte %d of %d", ErrCorrupt, i, off, len(b))
		}
		d := b[off:]
		c := FDPConfig{
			Index:          i,
			DescriptorSize: le.Uint16(d[0:]),
			FDPA:           d[2],
			VendorSize:     d[3],
			ReclaimGroups:  le.Uint32(d[4:]),
			Handles:        le.Uint16(d[8:]),
			MaxPIDs:        uint32(le.Uint16(d[10:])) + 1,
			Namespaces:     le.Uint32(d[12:]),
			RUSize:         le.Uint64(d[16:]),
			RUTimeLimit:    le.Uint32(d[24:]),
		}
		c.RGIF = c.FDPA & 0xF
		c.VolatileWriteCache = c.FDPA&(1<<4) != 0
		c.Valid = c.FDPA&(1<<7) != 0
		need := configDescFixed + int(c.Handles)*ruhDescSize + int(c.VendorSize)
		if int(c.DescriptorSize) < need {
			return nil, fmt.Errorf("%w: FDP configuration %d is %d bytes, its %d handles and %d vendor bytes need %d", ErrCorrupt, i, c.DescriptorSize, c.Handles, c.VendorSize, need)
		}
		if int(c.DescriptorSize) > len(b)-off {
			return nil, fmt.Errorf("%w: FDP configuration %d (%d bytes at %d) overruns the %d-byte log", ErrCorrupt, i, c.DescriptorSize, off, len(b))
		}
		c.RUHs = make([]RUHDesc, c.Handles)
		for h := range c.RUHs {
			c.RUHs[h] = RUHDesc{Type: d[configDescFixed+h*ruhDescSize]}
		}
		l.Configs = append(l.Configs, c)
		off += int(c.DescriptorSize)
	}
	return l, nil
}

// Reclaim unit handle attributes (RUHA) of the usage log.
const (
	RUHAUnused     uint8 = 0
	RUHAHost       uint8 = 1 // a namespace's placement handle, chosen by the host
	RUHAController uint8 = 2 // chosen by the controller
)

// RUHUsage is one descriptor of log page 0x21, indexed by reclaim unit handle identifier.
type RUHUsage struct {
	RUHID uint16 `json:"ruhid"`
	Attr  uint8  `json:"ruha"` // RUHA: RUHAUnused, RUHAHost or RUHAController
}

// RUHAName names a reclaim unit handle attribute.
func RUHAName(a uint8) string {
	switch a {
	case RUHAUnused:
		return "unused"
	case RUHAHost:
		return "host specified"
	case RUHAController:
		return "controller specified"
	}
	return "attribute " + strconv.Itoa(int(a))
}

const (
	usageLogHeader = 8
	usageDescSize  = 8
)

// ParseRUHUsage parses log page 0x21: NRUH (bytes 1:0), then from byte 8 one 8-byte descriptor
// per handle whose byte 0 is RUHA.
func ParseRUHUsage(b []byte) ([]RUHUsage, error) {
	if len(b) < usageLogHeader {
		return nil, fmt.Errorf("%w: RUH usage log is %d bytes, the header alone is %d", ErrTruncated, len(b), usageLogHeader)
	}
	n := int(binary.LittleEndian.Uint16(b))
	if need := usageLogHeader + n*usageDescSize; len(b) < need {
		return nil, fmt.Errorf("%w: RUH usage log of %d handles is %d bytes of %d", ErrTruncated, n, len(b), need)
	}
	out := make([]RUHUsage, n)
	for i := range out {
		out[i] = RUHUsage{RUHID: uint16(i), Attr: b[usageLogHeader+i*usageDescSize]}
	}
	return out, nil
}

// Uint128 is an unsigned 128-bit counter of the FDP statistics log. It marshals to JSON as a
// plain decimal number.
type Uint128 struct{ Hi, Lo uint64 }

func u128(b []byte) Uint128 {
	return Uint128{Lo: binary.LittleEndian.Uint64(b), Hi: binary.LittleEndian.Uint64(b[8:])}
}

func (u Uint128) big() *big.Int {
	v := new(big.Int).SetUint64(u.Hi)
	return v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(u.Lo))
}

// String formats u in decimal.
func (u Uint128) String() string {
	if u.Hi == 0 {
		return strconv.FormatUint(u.Lo, 10)
	}
	return u.big().String()
}

// Float64 returns u as the nearest float64.
func (u Uint128) Float64() float64 { return float64(u.Hi)*math.Exp2(64) + float64(u.Lo) }

// MarshalJSON writes u as a JSON number.
func (u Uint128) MarshalJSON() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalJSON reads a JSON number that MarshalJSON wrote.
func (u *Uint128) UnmarshalJSON(b []byte) error {
	v, ok := new(big.Int).SetString(string(b), 10)
	if !ok || v.Sign() < 0 || v.BitLen() > 128 {
		return fmt.Errorf("fdp: %.40q is not an unsigned 128-bit number", b)
	}
	lo := new(big.Int).And(v, new(big.Int).SetUint64(math.MaxUint64))
	*u = Uint128{Hi: new(big.Int).Rsh(v, 64).Uint64(), Lo: lo.Uint64()}
	return nil
}

// FDPStats is log page 0x22, the FDP statistics of an endurance group.
type FDPStats struct {
	HostBytesWritten  Uint128 `json:"hbmw"` // HBMW, bytes 15:0: host bytes with metadata written
	MediaBytesWritten Uint128 `json:"mbmw"` // MBMW, bytes 31:16: media bytes with metadata written
	MediaBytesErased  Uint128 `json:"mbe"`  // MBE, bytes 47:32
}

// WriteAmplification returns media bytes written over host bytes written, or 0 before the
// host has written anything.
func (s FDPStats) WriteAmplification() float64 {
	h := s.HostBytesWritten.Float64()
	if h == 0 {
		return 0
	}
	return s.MediaBytesWritten.Float64() / h
}

// statsLogSize is the statistics log's size; bytes 63:48 are reserved, so 48 are enough.
const (
	statsLogSize = 64
	statsLogUsed = 48
)

// ParseFDPStats parses log page 0x22.
func ParseFDPStats(b []byte) (FDPStats, error) {
	if len(b) < statsLogUsed {
		return FDPStats{}, fmt.Errorf("%w: FDP statistics log is %d bytes, want %d", ErrTruncated, len(b), statsLogUsed)
	}
	return FDPStats{HostBytesWritten: u128(b[0:]), MediaBytesWritten: u128(b[16:]), MediaBytesErased: u128(b[32:])}, nil
}

// FDP event types.
const (
	EventRUNotFullyWritten   uint8 = 0x00
	EventRUTimeLimitExceeded uint8 = 0x01
	EventCtrlResetModifiedRU uint8 = 0x02
	EventInvalidPID          uint8 = 0x03
	EventMediaReallocated    uint8 = 0x80
	EventImplicitlyModified  uint8 = 0x81
)

// EventTypeName names an FDP event type.
func EventTypeName(t uint8) string {
	switch t {
	case EventRUNotFullyWritten:
		return "RU not fully written"
	case EventRUTimeLimitExceeded:
		return "RU time limit exceeded"
	case EventCtrlResetModifiedRU:
		return "controller reset modified RUH"
	case EventInvalidPID:
		return "invalid placement ID"
	case EventMediaReallocated:
		return "media reallocated"
	case EventImplicitlyModified:
		return "RUH implicitly modified"
	}
	return fmt.Sprintf("event %#02x", t)
}

// FDPEvent is one 64-byte event of log page 0x23.
type FDPEvent struct {
	Type uint8 `json:"type"` // byte 0
	// Flags (byte 1): bit 0 PIV (PID valid), bit 1 NSIDV, bit 2 LV (RGID and RUHID valid).
	Flags uint8  `json:"flags"`
	PID   uint16 `json:"pid"` // bytes 3:2
	// Timestamp is the low 48 bits of the NVMe timestamp (bytes 9:4): milliseconds since the
	// Unix epoch when TimestampOrigin is 1 (the host set the clock, as Linux does at probe),
	// else since the controller's last reset.
	Timestamp       uint64 `json:"timestamp_ms"`
	TimestampOrigin uint8  `json:"timestamp_origin"` // timestamp attributes (byte 10) bits 3:1
	NSID            uint32 `json:"nsid"`             // bytes 15:12
	RGID            uint16 `json:"rgid"`             // bytes 33:32
	// RUHID is bytes 35:34; libnvme and QEMU keep only byte 34 (byte 35 reserved), which reads
	// the same for any handle below 256.
	RUHID uint16 `json:"ruhid"`
	// For a media reallocated event (type specific bytes 31:16): NLBAM (bytes 19:18) blocks
	// moved starting at LBA (bytes 27:20), valid when bit 0 of byte 16 is set.
	NLBAM uint16 `json:"nlbam,omitempty"`
	LBA   uint64 `json:"lba,omitempty"`
	// Host is true for a host event (log specific parameter 1), false for a controller event.
	Host bool `json:"host"`
}

// Event flags.
const (
	EventPIDValid      uint8 = 1 << 0
	EventNSIDValid     uint8 = 1 << 1
	EventLocationValid uint8 = 1 << 2
)

const (
	eventsLogHeader = 64
	eventSize       = 64
)

// ParseFDPEvents parses log page 0x23: the number of events (bytes 3:0), then from byte 64
// one 64-byte event each. host says which half of the log was read (LSP bit 0).
func ParseFDPEvents(b []byte, host bool) ([]FDPEvent, error) {
	if len(b) < eventsLogHeader {
		return nil, fmt.Errorf("%w: FDP events log is %d bytes, the header alone is %d", ErrTruncated, len(b), eventsLogHeader)
	}
	le := binary.LittleEndian
	n := uint64(le.Uint32(b))
	if need := eventsLogHeader + n*eventSize; uint64(len(b)) < need {
		return nil, fmt.Errorf("%w: FDP events log of %d events is %d bytes of %d", ErrTruncated, n, len(b), need)
	}
	out := make([]FDPEvent, n)
	for i := range out {
		e := b[eventsLogHeader+i*eventSize:]
		ev := FDPEvent{
			Type:            e[0],
			Flags:           e[1],
			PID:             le.Uint16(e[2:]),
			Timestamp:       le.Uint64(e[4:]) & (1<<48 - 1),
			TimestampOrigin: e[10] >> 1 & 0x7,
			NSID:            le.Uint32(e[12:]),
			RGID:            le.Uint16(e[32:]),
			RUHID:           le.Uint16(e[34:]),
			Host:            host,
		}
		if ev.Type == EventMediaReallocated && e[16]&1 != 0 {
			ev.NLBAM = le.Uint16(e[18:])
			ev.LBA = le.Uint64(e[20:])
		}
		out[i] = ev
	}
	return out, nil
}

// RUHStatus is one reclaim unit handle status descriptor (I/O Management Receive, operation 1):
// a placement identifier of the namespace and the handle it maps to.
type RUHStatus struct {
	PID   uint16 `json:"pid"`   // bytes 1:0
	RUHID uint16 `json:"ruhid"` // bytes 3:2
	// EARUTR (bytes 7:4): estimated seconds until the active reclaim unit's time limit; 0 means
	// not reported.
	EARUTR uint32 `json:"earutr"`
	// RUAMW (bytes 15:8): logical blocks that can still be written to the active reclaim unit
	// before the controller moves the handle to a new one.
	RUAMW uint64 `json:"ruamw"`
}

const (
	ruhStatusHeader = 16
	ruhStatusSize   = 32
)

// RUHStatusLen returns the bytes a reclaim unit handle status of n descriptors takes.
func RUHStatusLen(n int) int { return ruhStatusHeader + n*ruhStatusSize }

// ParseRUHStatus parses the reclaim unit handle status: NRUHSD (bytes 15:14), then from byte 16
// one 32-byte descriptor each.
func ParseRUHStatus(b []byte) ([]RUHStatus, error) {
	if len(b) < ruhStatusHeader {
		return nil, fmt.Errorf("%w: RUH status is %d bytes, the header alone is %d", ErrTruncated, len(b), ruhStatusHeader)
	}
	le := binary.LittleEndian
	n := int(le.Uint16(b[14:]))
	if need := RUHStatusLen(n); len(b) < need {
		return nil, fmt.Errorf("%w: RUH status of %d descriptors is %d bytes of %d", ErrTruncated, n, len(b), need)
	}
	out := make([]RUHStatus, n)
	for i := range out {
		d := b[ruhStatusHeader+i*ruhStatusSize:]
		out[i] = RUHStatus{PID: le.Uint16(d[0:]), RUHID: le.Uint16(d[2:]), EARUTR: le.Uint32(d[4:]), RUAMW: le.Uint64(d[8:])}
	}
	return out, nil
}
