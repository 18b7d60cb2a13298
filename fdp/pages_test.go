package fdp

import "encoding/binary"

// Encoders for the pages the parsers read: the table tests build pages with them and the fuzz
// tests check that parse(encode(parse(b))) == parse(b). They write what the parsers read and
// zeroes elsewhere.

var le = binary.LittleEndian

func encodeIDController(c *IDController) []byte {
	b := make([]byte, IdentifySize)
	le.PutUint16(b[0:], c.VendorID)
	le.PutUint16(b[2:], c.SubsystemVendorID)
	padField(b[4:24], c.Serial)
	padField(b[24:64], c.Model)
	padField(b[64:72], c.Firmware)
	b[77] = c.MDTS
	le.PutUint16(b[78:], c.ControllerID)
	le.PutUint32(b[80:], c.Version)
	le.PutUint32(b[96:], c.CTRATT)
	le.PutUint16(b[340:], c.EndGIDMax)
	le.PutUint32(b[516:], c.Namespaces)
	le.PutUint16(b[520:], c.ONCS)
	copy(b[768:1024], c.SubNQN) // NUL padded
	return b
}

// padField writes s space-padded, as identify's ASCII fields are.
func padField(dst []byte, s string) {
	for i := range dst {
		dst[i] = ' '
	}
	copy(dst, s)
}

// nsFormat is one LBA format of an identify namespace page.
type nsFormat struct {
	ms    uint16
	lbads uint8
}

func encodeIDNamespace(n *IDNamespace, formats []nsFormat) []byte {
	b := make([]byte, IdentifySize)
	le.PutUint64(b[0:], n.Size)
	le.PutUint64(b[8:], n.Capacity)
	le.PutUint64(b[16:], n.Utilization)
	b[25] = uint8(len(formats) - 1)
	b[26] = n.FLBAS
	b[33] = n.DLFEAT
	le.PutUint16(b[100:], n.NVMSetID)
	le.PutUint16(b[102:], n.EndGID)
	for i, f := range formats {
		le.PutUint16(b[128+4*i:], f.ms)
		b[128+4*i+2] = f.lbads
	}
	return b
}

func encodeConfigLog(l *FDPConfigLog) []byte {
	size := int(l.Size)
	used := configLogHeader
	for _, c := range l.Configs {
		used += int(c.DescriptorSize)
	}
	b := make([]byte, max(size, used))
	le.PutUint16(b[0:], uint16(len(l.Configs)-1))
	b[2] = l.Version
	le.PutUint32(b[4:], l.Size)
	off := configLogHeader
	for _, c := range l.Configs {
		d := b[off:]
		le.PutUint16(d[0:], c.DescriptorSize)
		d[2] = c.FDPA
		d[3] = c.VendorSize
		le.PutUint32(d[4:], c.ReclaimGroups)
		le.PutUint16(d[8:], c.Handles)
		le.PutUint16(d[10:], uint16(c.MaxPIDs-1))
		le.PutUint32(d[12:], c.Namespaces)
		le.PutUint64(d[16:], c.RUSize)
		le.PutUint32(d[24:], c.RUTimeLimit)
		for h, r := range c.RUHs {
			d[configDescFixed+h*ruhDescSize] = r.Type
		}
		off += int(c.DescriptorSize)
	}
	return b
}

// qemuConfig is the configuration QEMU reports for fdp.runs=64M,fdp.nrg=1,fdp.nruh=8: one
// descriptor of 64 + 8×4 bytes, rounded up to 8.
func qemuConfig() FDPConfig {
	c := FDPConfig{
		DescriptorSize: 96, FDPA: 0x80, Valid: true, ReclaimGroups: 1, Handles: 8,
		MaxPIDs: 128, Namespaces: 256, RUSize: 64 << 20, RUHs: make([]RUHDesc, 8),
	}
	for i := range c.RUHs {
		c.RUHs[i].Type = RUHTInitiallyIsolated
	}
	return c
}

func encodeRUHUsage(u []RUHUsage) []byte {
	b := make([]byte, usageLogHeader+len(u)*usageDescSize)
	le.PutUint16(b, uint16(len(u)))
	for i, r := range u {
		b[usageLogHeader+i*usageDescSize] = r.Attr
	}
	return b
}

func encodeStats(s FDPStats) []byte {
	b := make([]byte, statsLogSize)
	for i, u := range []Uint128{s.HostBytesWritten, s.MediaBytesWritten, s.MediaBytesErased} {
		le.PutUint64(b[16*i:], u.Lo)
		le.PutUint64(b[16*i+8:], u.Hi)
	}
	return b
}

func encodeEvents(evs []FDPEvent) []byte {
	b := make([]byte, eventsLogHeader+len(evs)*eventSize)
	le.PutUint32(b, uint32(len(evs)))
	for i, ev := range evs {
		e := b[eventsLogHeader+i*eventSize:]
		e[0] = ev.Type
		e[1] = ev.Flags
		le.PutUint16(e[2:], ev.PID)
		le.PutUint64(e[4:], ev.Timestamp)
		e[10] = ev.TimestampOrigin << 1
		le.PutUint32(e[12:], ev.NSID)
		if ev.Type == EventMediaReallocated && (ev.NLBAM != 0 || ev.LBA != 0) {
			e[16] = 1
			le.PutUint16(e[18:], ev.NLBAM)
			le.PutUint64(e[20:], ev.LBA)
		}
		le.PutUint16(e[32:], ev.RGID)
		le.PutUint16(e[34:], ev.RUHID)
	}
	return b
}

func encodeRUHStatus(rs []RUHStatus) []byte {
	b := make([]byte, RUHStatusLen(len(rs)))
	le.PutUint16(b[14:], uint16(len(rs)))
	for i, r := range rs {
		d := b[ruhStatusHeader+i*ruhStatusSize:]
		le.PutUint16(d[0:], r.PID)
		le.PutUint16(d[2:], r.RUHID)
		le.PutUint32(d[4:], r.EARUTR)
		le.PutUint64(d[8:], r.RUAMW)
	}
	return b
}

// qemuRUHs is the RUH status of a fresh QEMU namespace with fdp.ruhs=0-7 and 64 MiB reclaim
// units of 512-byte blocks.
func qemuRUHs() []RUHStatus {
	rs := make([]RUHStatus, 8)
	for i := range rs {
		rs[i] = RUHStatus{PID: uint16(i), RUHID: uint16(i), RUAMW: 64 << 20 / 512}
	}
	return rs
}
