//go:build linux

package fdp

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"kvresp/internal/uring"
	"kvresp/slab"
)

// MapBuffer returns n bytes of zeroed, page-aligned anonymous memory outside the Go heap, which
// the kernel may read and write for a command (see the package doc). Free it with UnmapBuffer.
func MapBuffer(n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("fdp: a buffer of %d bytes", n)
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("cannot map a %d-byte command buffer: %w", n, err)
	}
	return b, nil
}

// UnmapBuffer returns a buffer from MapBuffer to the kernel.
func UnmapBuffer(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// scratchSize is the mmap'd buffer a device reads pages into: every page kvresp reads fits,
// except a very large log, which is read in pieces.
const scratchSize = 64 << 10

// passthru is an NVMe character device with its own small ring: one command at a time, which
// is all discovery and the device tests need. The NVMe tier's data path has its own rings.
type passthru struct {
	mu      sync.Mutex // one command at a time; guards everything below
	path    string
	fd      int
	op      uint32 // NVME_URING_CMD_ADMIN or NVME_URING_CMD_IO
	ring    *uring.Ring
	scratch []byte // mmap'd, scratchSize bytes
}

// openPassthru opens the character device at path, for writing too when write is set, for
// commands of type op.
func openPassthru(path string, write bool, op uint32) (*passthru, error) {
	flags := unix.O_RDONLY
	if write {
		flags = unix.O_RDWR
	}
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	// Passthrough needs 128-byte SQEs (the 72-byte command at offset 48) and 32-byte CQEs (the
	// 64-bit command result at byte 16); without either the kernel answers EOPNOTSUPP.
	ring, err := uring.New(uring.Params{Entries: 4, SQE128: true, CQE32: true})
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	scratch, err := MapBuffer(scratchSize)
	if err != nil {
		_ = ring.Close()
		_ = unix.Close(fd)
		return nil, err
	}
	return &passthru{path: path, fd: fd, op: op, ring: ring, scratch: scratch}, nil
}

func (p *passthru) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil
	}
	err := errors.Join(p.ring.Close(), unix.Close(p.fd), UnmapBuffer(p.scratch))
	p.fd, p.scratch = -1, nil
	return err
}

// exec runs cmd with data as its buffer and returns the completion's 64-bit result. data must
// come from MapBuffer or other memory outside the Go heap. A DataLen of 0 in cmd is taken from
// len(data); any other DataLen must equal it.
func (p *passthru) exec(cmd Command, data []byte) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.execLocked(cmd, data)
}

// read runs cmd, which returns cmd.DataLen bytes (at most scratchSize), into the scratch buffer
// and returns a copy on the Go heap, with the completion's result.
func (p *passthru) read(cmd Command) ([]byte, uint64, error) {
	n := int(cmd.DataLen)
	if n == 0 || n > scratchSize {
		panic(fmt.Sprintf("BUG: fdp: a %d-byte read into the %d-byte scratch buffer", n, scratchSize))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil, 0, fmt.Errorf("fdp: %s is closed", p.path)
	}
	buf := p.scratch[:n]
	clear(buf)
	res, err := p.execLocked(cmd, buf)
	if err != nil {
		return nil, 0, err
	}
	return append([]byte(nil), buf...), res, nil
}

func (p *passthru) execLocked(cmd Command, data []byte) (uint64, error) {
	if len(data) > 0 {
		if cmd.DataLen == 0 {
			cmd.DataLen = uint32(len(data))
		}
		if uint64(cmd.DataLen) != uint64(len(data)) {
			return 0, fmt.Errorf("fdp: command %#02x moves %d bytes but its buffer has %d", cmd.Opcode, cmd.DataLen, len(data))
		}
		cmd.Addr = uint64(slab.Addr(data))
	} else if cmd.DataLen != 0 {
		return 0, fmt.Errorf("fdp: command %#02x moves %d bytes but has no buffer", cmd.Opcode, cmd.DataLen)
	}
	if p.fd < 0 {
		return 0, fmt.Errorf("fdp: %s is closed", p.path)
	}
	sqe := p.ring.GetSQE()
	if sqe == nil {
		panic("BUG: fdp: no free SQE in a ring used for one command at a time")
	}
	sqe.PrepURingCmd(int32(p.fd), p.op)
	cmd.Encode(p.ring.Cmd(sqe))
	cqe, err := p.ring.WaitCQE()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.path, err)
	}
	p.ring.CQESeen()
	runtime.KeepAlive(data)
	if err := ResultError(cqe.Res); err != nil {
		return 0, fmt.Errorf("%s: command %#02x: %w", p.path, cmd.Opcode, err)
	}
	return cqe.Big[0], nil
}

// nsid asks the kernel for the namespace ID of a namespace device (NVME_IOCTL_ID).
func (p *passthru) nsid() (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, err := unix.IoctlRetInt(p.fd, nvmeIoctlID)
	if err != nil {
		return 0, fmt.Errorf("NVME_IOCTL_ID: %w", err)
	}
	if id <= 0 {
		return 0, fmt.Errorf("NVME_IOCTL_ID gave namespace ID %d", id)
	}
	return uint32(id), nil
}
