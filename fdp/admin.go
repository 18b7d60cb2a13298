package fdp

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// maxLogSize bounds what a device's header may make kvresp read for one log page.
const maxLogSize = 4 << 20

// Controller is an NVMe controller character device (/dev/nvmeX) taking admin commands through
// io_uring passthrough (NVME_URING_CMD_ADMIN). It is safe for concurrent use; commands run one
// at a time. Anything but Identify needs CAP_SYS_ADMIN.
type Controller struct {
	p       *passthru
	id      *IDController
	maxXfer int // bytes one command may move: MDTS, at most the scratch buffer
}

// OpenController opens the controller device at path (/dev/nvme0) and identifies it.
func OpenController(path string) (*Controller, error) {
	p, err := openPassthru(path, false, NVME_URING_CMD_ADMIN)
	if err != nil {
		return nil, err
	}
	c := &Controller{p: p, maxXfer: scratchSize}
	b, _, err := p.read(IdentifyCmd(CNSController, 0))
	if err == nil {
		c.id, err = ParseIDController(b)
	}
	if err == nil && c.id.VendorID == 0 && c.id.Model == "" && c.id.Serial == "" {
		// What a file whose uring_cmd does nothing returns (/dev/null has one since Linux 6.0).
		err = errors.New("the identify data is all zeroes: not an NVMe controller")
	}
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("cannot identify controller %s: %w", path, err)
	}
	if c.id.MaxTransfer != 0 && c.id.MaxTransfer < uint64(c.maxXfer) {
		c.maxXfer = int(c.id.MaxTransfer)
	}
	return c, nil
}

// Close closes the device.
func (c *Controller) Close() error { return c.p.close() }

// Path returns the device's path.
func (c *Controller) Path() string { return c.p.path }

// Identify returns the Identify Controller data read at open.
func (c *Controller) Identify() *IDController { return c.id }

// Exec runs an admin command with data as its buffer, which must come from MapBuffer (nil for a
// command without data), and returns the completion's 64-bit result.
func (c *Controller) Exec(cmd Command, data []byte) (uint64, error) { return c.p.exec(cmd, data) }

// IdentifyNamespace reads the Identify Namespace data of nsid.
func (c *Controller) IdentifyNamespace(nsid uint32) (*IDNamespace, error) {
	b, _, err := c.p.read(IdentifyCmd(CNSNamespace, nsid))
	if err != nil {
		return nil, fmt.Errorf("cannot identify namespace %d: %w", nsid, err)
	}
	return ParseIDNamespace(b)
}

// FDPFeature reads the FDP feature of endurance group endgid. A controller whose endurance
// group has FDP disabled may answer with StatusInvalidField (QEMU does) or StatusFDPDisabled.
func (c *Controller) FDPFeature(endgid uint16) (FDPFeature, error) {
	res, err := c.p.exec(FDPFeatureCmd(endgid), nil)
	if err != nil {
		return FDPFeature{}, fmt.Errorf("cannot get the FDP feature of endurance group %d: %w", endgid, err)
	}
	return ParseFDPFeature(uint32(res)), nil
}

// LogPage reads length bytes of log page lid from its start, in pieces no larger than the
// controller's maximum transfer; lsp and lsi are as for LogPageCmd.
func (c *Controller) LogPage(lid, lsp uint8, lsi uint16, length int) ([]byte, error) {
	if length <= 0 || length > maxLogSize {
		return nil, fmt.Errorf("fdp: log page %#02x of %d bytes; kvresp reads 1 to %d", lid, length, maxLogSize)
	}
	padded := (length + 3) &^ 3 // the command counts dwords
	out := make([]byte, 0, padded)
	for off := 0; off < padded; {
		n := min(padded-off, c.maxXfer)
		b, _, err := c.p.read(LogPageCmd(lid, lsp, lsi, uint64(off), uint32(n)))
		if err != nil {
			return nil, fmt.Errorf("cannot read log page %#02x: %w", lid, err)
		}
		out = append(out, b...)
		off += n
	}
	return out[:length], nil
}

// sizedLog reads a log page whose header (the first head bytes) gives its size.
func (c *Controller) sizedLog(lid, lsp uint8, lsi uint16, head int, size func([]byte) uint64) ([]byte, error) {
	h, err := c.LogPage(lid, lsp, lsi, head)
	if err != nil {
		return nil, err
	}
	n := size(h)
	if n <= uint64(head) {
		return h, nil
	}
	if n > maxLogSize {
		return nil, fmt.Errorf("fdp: log page %#02x claims %d bytes; kvresp reads at most %d", lid, n, maxLogSize)
	}
	return c.LogPage(lid, lsp, lsi, int(n))
}

// FDPConfigs reads log page 0x20 of endurance group endgid.
func (c *Controller) FDPConfigs(endgid uint16) (*FDPConfigLog, error) {
	b, err := c.sizedLog(LogFDPConfigs, 0, endgid, configLogHeader, func(h []byte) uint64 {
		return uint64(h[4]) | uint64(h[5])<<8 | uint64(h[6])<<16 | uint64(h[7])<<24
	})
	if err != nil {
		return nil, err
	}
	return ParseFDPConfigLog(b)
}

// RUHUsage reads log page 0x21 of endurance group endgid.
func (c *Controller) RUHUsage(endgid uint16) ([]RUHUsage, error) {
	b, err := c.sizedLog(LogRUHUsage, 0, endgid, usageLogHeader, func(h []byte) uint64 {
		return usageLogHeader + (uint64(h[0])|uint64(h[1])<<8)*usageDescSize
	})
	if err != nil {
		return nil, err
	}
	return ParseRUHUsage(b)
}

// FDPStats reads log page 0x22 of endurance group endgid.
func (c *Controller) FDPStats(endgid uint16) (FDPStats, error) {
	b, err := c.LogPage(LogFDPStats, 0, endgid, statsLogSize)
	if err != nil {
		return FDPStats{}, err
	}
	return ParseFDPStats(b)
}

// FDPEvents reads the host events (host true, log specific parameter 1) or the controller
// events of log page 0x23 of endurance group endgid, oldest first.
func (c *Controller) FDPEvents(endgid uint16, host bool) ([]FDPEvent, error) {
	var lsp uint8
	if host {
		lsp = 1
	}
	b, err := c.sizedLog(LogFDPEvents, lsp, endgid, eventsLogHeader, func(h []byte) uint64 {
		n := uint64(h[0]) | uint64(h[1])<<8 | uint64(h[2])<<16 | uint64(h[3])<<24
		return eventsLogHeader + n*eventSize
	})
	if err != nil {
		return nil, err
	}
	return ParseFDPEvents(b, host)
}

// Namespace is an NVMe namespace character device (/dev/ngXnY) taking I/O commands through
// io_uring passthrough (NVME_URING_CMD_IO). It is safe for concurrent use; commands run one at
// a time. Passthrough needs CAP_SYS_ADMIN, or write access to the device for commands the
// controller reports as harmless.
type Namespace struct {
	p    *passthru
	nsid uint32
}

// OpenNamespace opens the namespace device at path for reading and writing (for reading only
// when writing is not permitted: then writes fail) and asks the kernel for its namespace ID.
func OpenNamespace(path string) (*Namespace, error) {
	n, err := openNamespace(path, true)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		n, err = openNamespace(path, false)
	}
	return n, err
}

// openNamespace opens the namespace device at path, for writing too when write is set.
func openNamespace(path string, write bool) (*Namespace, error) {
	p, err := openPassthru(path, write, NVME_URING_CMD_IO)
	if err != nil {
		return nil, err
	}
	id, err := p.nsid()
	if err != nil {
		_ = p.close()
		return nil, fmt.Errorf("%s is not an NVMe namespace device: %w", path, err)
	}
	return &Namespace{p: p, nsid: id}, nil
}

// Close closes the device.
func (n *Namespace) Close() error { return n.p.close() }

// Path returns the device's path.
func (n *Namespace) Path() string { return n.p.path }

// NSID returns the namespace ID, which every I/O command must carry.
func (n *Namespace) NSID() uint32 { return n.nsid }

// Exec runs an I/O command with data as its buffer, which must come from MapBuffer, and returns
// the completion's 64-bit result. The command's NSID is the caller's to set (NSID()).
func (n *Namespace) Exec(cmd Command, data []byte) (uint64, error) { return n.p.exec(cmd, data) }

// RUHStatus reads the namespace's reclaim unit handle status: its placement identifiers, in
// the device's order, with the handle each maps to and what the handle's reclaim unit can
// still take.
func (n *Namespace) RUHStatus() ([]RUHStatus, error) {
	// 4 KiB (127 descriptors) first: no device's maximum transfer is smaller.
	size := 4096
	for {
		b, _, err := n.p.read(RUHStatusCmd(n.nsid, uint32(size)))
		if err != nil {
			return nil, fmt.Errorf("cannot read the RUH status of namespace %d: %w", n.nsid, err)
		}
		if len(b) >= ruhStatusHeader {
			if need := RUHStatusLen(int(b[14]) | int(b[15])<<8); need > size {
				if need > scratchSize || size != 4096 {
					return nil, fmt.Errorf("fdp: the RUH status of namespace %d is %d bytes; kvresp reads at most %d", n.nsid, need, scratchSize)
				}
				size = need
				continue
			}
		}
		return ParseRUHStatus(b)
	}
}
