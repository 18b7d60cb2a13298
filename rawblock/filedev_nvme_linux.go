package rawblock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"kvresp/fdp"
	"kvresp/internal/uring"
	"kvresp/slab"
)

// NVMe passthrough. A FileDevice opened on an NVMe namespace character device (/dev/ngXnY)
// issues NVMe Read, Write, Flush and Dataset Management commands itself, through io_uring
// URING_CMD on rings with 128-byte SQEs and 32-byte CQEs, with the same workers, queue depth,
// chunking and fixed buffers as file I/O. Its writes carry the placement ID (FDP) of their
// class when the namespace has FDP enabled; otherwise it says so once and writes without one.
// Its geometry comes from the controller (Identify): LBA size as the block size, the namespace
// size, and the maximum transfer, which caps the chunk size.
//
// A block device (/dev/nvmeXnY) whose kernel exposes write streams (Linux 6.16+,
// /sys/block/*/queue/max_write_streams > 0) gets the class as the write stream of each write
// instead, through the block layer.

// nvmeDev is what a FileDevice on a namespace character device needs to build commands.
type nvmeDev struct {
	nsid uint32
	// pids is the placement ID of each class, -1 for none (FDP off or absent).
	pids [numClasses]int
	// dsm: the controller supports Dataset Management (deallocate).
	dsm bool
	// maxTrim is the most bytes one deallocate range may cover (a range counts blocks in 32 bits).
	maxTrim int64
	// ruSize is the reclaim unit size of the FDP configuration in use, 0 without FDP.
	ruSize int64
}

// isNVMeChar reports whether st is a character device: the only character devices a FileDevice
// takes are NVMe namespace devices, which openNVMe then checks.
func isNVMeChar(mode uint32) bool { return mode&unix.S_IFMT == unix.S_IFCHR }

// openNVMe sizes the namespace device d.fd was opened on, learns its geometry from the
// controller, and picks the placement IDs of the classes.
func (d *FileDevice) openNVMe(o FileOptions) (int64, error) {
	info, err := fdp.Probe(o.Path)
	if errors.Is(err, unix.ENOTTY) {
		return 0, fmt.Errorf("rawblock: %s is a character device but not an NVMe namespace device (/dev/ngXnY): %w", o.Path, err)
	}
	if err != nil {
		return 0, fmt.Errorf("rawblock: %s: %w", o.Path, err)
	}
	ns, ctrl := info.Namespace, info.Controller
	if ns.LBASize != 512 && ns.LBASize != 4096 {
		return 0, fmt.Errorf("rawblock: %s is formatted with %d-byte blocks; kvresp takes 512 or 4096 (nvme format --lbaf)", o.Path, ns.LBASize)
	}
	if ns.MetadataSize != 0 {
		return 0, fmt.Errorf("rawblock: %s is formatted with %d bytes of metadata per block; kvresp takes formats without", o.Path, ns.MetadataSize)
	}
	d.bs = int(ns.LBASize)
	d.memAlign = 4 // NVMe data pointers need dword alignment (the kernel's dma_alignment is 3)
	n := &nvmeDev{nsid: info.NSID, dsm: ctrl.DSMSupported(), maxTrim: int64(ns.LBASize) * (1<<32 - int64(ns.LBASize))}
	for c := range n.pids {
		n.pids[c] = -1
	}
	// One command moves at most 65536 blocks and at most the controller's maximum transfer.
	maxChunk := int64(ns.LBASize) << 16
	if ctrl.MaxTransfer > 0 {
		maxChunk = min(maxChunk, int64(ctrl.MaxTransfer))
	}
	if int64(d.chunk) > maxChunk {
		d.chunk = int(maxChunk)
	}
	switch {
	case !info.FDPSupported():
		d.log.Info("rawblock: the controller has no Flexible Data Placement; writing without placement", "path", o.Path)
	case !info.FDPEnabled:
		d.log.Warn("rawblock: FDP is supported but not enabled on the endurance group; writing without placement (enabling it needs the namespace deleted: nvme set-feature -f 0x1d)", "path", o.Path)
	default:
		var p fdp.PIDs
		if o.PIDs != "" {
			p, err = fdp.ParsePIDs(o.PIDs, info.RUHs)
		} else {
			p.Meta, p.Hot, p.Cold, err = fdp.DefaultPIDs(info.RUHs)
		}
		if err != nil {
			return 0, fmt.Errorf("rawblock: %s: %w", o.Path, err)
		}
		n.pids[ClassMeta], n.pids[ClassHot], n.pids[ClassCold] = int(p.Meta), int(p.Hot), int(p.Cold)
		if info.Config != nil {
			n.ruSize = int64(info.Config.RUSize)
		}
		d.log.Info("rawblock: FDP placement", "path", o.Path, "pids", p.String(), "handles", len(info.RUHs))
	}
	d.nvme = n
	size := int64(ns.Bytes())
	if o.Size > size {
		return 0, fmt.Errorf("rawblock: size %d is larger than the %d bytes of namespace %s; lower rawblock-size or set it to 0", o.Size, size, o.Path)
	}
	if o.Size > 0 {
		size = o.Size
	}
	return size, nil
}

// Placement reports the placement ID each class is written with (index: Class), or false when
// the device writes without placement.
func (d *FileDevice) Placement() ([numClasses]int, bool) {
	if d.nvme == nil || d.nvme.pids[ClassHot] < 0 {
		return [numClasses]int{-1, -1, -1}, false
	}
	return d.nvme.pids, true
}

// ReclaimUnitSize returns the size of the device's FDP reclaim units, 0 when it writes without
// placement: regions a multiple of it fill and empty whole reclaim units.
func (d *FileDevice) ReclaimUnitSize() int64 {
	if d.nvme == nil || d.nvme.pids[ClassHot] < 0 {
		return 0
	}
	return d.nvme.ruSize
}

// Passthrough reports whether the device issues NVMe commands itself (a namespace character
// device).
func (d *FileDevice) Passthrough() bool { return d.nvme != nil }

// prepNVMe writes slot i's operation into sqe as an NVMe command.
func (w *ringWorker) prepNVMe(sqe *uring.SQE, i uint32) {
	s := &w.slots[i]
	c := s.c
	n := w.d.nvme
	lba := func(off int64) uint64 { return uint64(off) / uint64(w.d.bs) }
	var cmd fdp.Command
	var buf []byte
	switch c.op {
	case fileRead, fileWrite:
		buf = c.buf[s.pos : s.pos+s.n]
		blocks := uint32(s.n / w.d.bs)
		if c.op == fileRead {
			cmd = fdp.ReadCmd(n.nsid, lba(c.off+int64(s.pos)), blocks)
		} else {
			cmd = fdp.WriteCmd(n.nsid, lba(c.off+int64(s.pos)), blocks, n.pids[c.class])
		}
	case fileSync:
		cmd = fdp.FlushCmd(n.nsid)
	case filePunch:
		buf = w.dsm[int(i)*fdp.DSMRangeSize : int(i+1)*fdp.DSMRangeSize]
		if _, err := fdp.PutDSMRanges(buf, []fdp.DSMRange{{Blocks: uint32(c.n / int64(w.d.bs)), SLBA: lba(c.off)}}); err != nil {
			panic("BUG: rawblock: " + err.Error())
		}
		cmd = fdp.DeallocateCmd(n.nsid, 1)
	}
	if buf != nil {
		cmd.Addr = uint64(slab.Addr(buf))
		cmd.DataLen = uint32(len(buf))
	}
	sqe.PrepURingCmd(int32(w.d.fd), fdp.NVME_URING_CMD_IO)
	cmd.Encode(w.ring.Cmd(sqe))
	if c.rw() && c.fix > 0 {
		sqe.SetURingCmdFixed(uint16(c.fix - 1))
	}
}

// nvmeResult turns a passthrough completion into the bytes moved or an error: 0 is success
// for the whole command, a positive result an NVMe status, a negative one an errno.
func nvmeResult(res int32, n int) (int, error) {
	if err := fdp.ResultError(res); err != nil {
		return 0, err
	}
	return n, nil
}

// setupNVMe gives the worker what passthrough needs: the ring flags and a deallocate range
// buffer per slot, in memory the kernel may read (mmap'd, off the Go heap).
func (w *ringWorker) setupNVMe() error {
	n := len(w.slots) * fdp.DSMRangeSize
	n = (n + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("rawblock: cannot map the deallocate buffers: %w", err)
	}
	w.dsm = b
	return nil
}

// trimNVMe deallocates [off, off+n) in ranges a Dataset Management command can carry.
func (d *FileDevice) trimNVMe(off, n int64) error {
	if !d.nvme.dsm {
		if !d.noDiscard.Swap(true) {
			d.log.Warn("rawblock: the controller does not support Dataset Management; reclaimed regions are not deallocated", "path", d.path)
		}
		d.st.trimsSkipped.Add(1)
		return nil
	}
	for n > 0 {
		m := min(n, d.nvme.maxTrim)
		if err := d.do(filePunch, nil, off, m, 0); err != nil {
			return err
		}
		off, n = off+m, n-m
	}
	return nil
}

// blockWriteStreams returns the write stream of each class for block device path: streams 1,
// 2 and 3 (0 is "none") when its queue has at least three, else none. Linux before 6.16 has no
// such attribute.
func blockWriteStreams(path string) ([numClasses]uint8, int) {
	var none [numClasses]uint8
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return none, 0
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(real), "queue/max_write_streams"))
	if err != nil {
		return none, 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < int(numClasses) {
		return none, max(n, 0)
	}
	return [numClasses]uint8{1, 2, 3}, n
}
