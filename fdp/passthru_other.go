//go:build !linux

package fdp

import "errors"

// NVMe passthrough through io_uring exists only on Linux: here every device call fails with
// errors.ErrUnsupported, and the types exist so that callers build everywhere.

var errUnsupported = errors.Join(errors.New("fdp: NVMe passthrough needs Linux"), errors.ErrUnsupported)

// scratchSize is the buffer a device reads pages into on Linux.
const scratchSize = 64 << 10

type passthru struct{ path string }

// MapBuffer returns errors.ErrUnsupported: there is no passthrough to map buffers for.
func MapBuffer(n int) ([]byte, error) { return nil, errUnsupported }

// UnmapBuffer returns errors.ErrUnsupported.
func UnmapBuffer(b []byte) error { return errUnsupported }

func openPassthru(path string, write bool, op uint32) (*passthru, error) {
	return nil, errUnsupported
}

func (p *passthru) close() error                                  { return nil }
func (p *passthru) exec(cmd Command, data []byte) (uint64, error) { return 0, errUnsupported }
func (p *passthru) read(cmd Command) ([]byte, uint64, error)      { return nil, 0, errUnsupported }
func (p *passthru) nsid() (uint32, error)                         { return 0, errUnsupported }
