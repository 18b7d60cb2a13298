//go:build !linux

package rawblock

import (
	"errors"
	"fmt"
)

// FileDevice is a Device over a file or block device through io_uring, which exists only on
// Linux: here OpenFile always fails with errors.ErrUnsupported.
type FileDevice struct{}

var errFileDevice = fmt.Errorf("rawblock: a file device needs Linux (io_uring): %w", errors.ErrUnsupported)

// OpenFile returns errors.ErrUnsupported.
func OpenFile(o FileOptions) (*FileDevice, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return nil, errFileDevice
}

func (d *FileDevice) BlockSize() int                             { return 4096 }
func (d *FileDevice) MemAlign() int                              { return 4096 }
func (d *FileDevice) Size() int64                                { return 0 }
func (d *FileDevice) Path() string                               { return "" }
func (d *FileDevice) IsBlockDevice() bool                        { return false }
func (d *FileDevice) ReadAt(p []byte, off int64) error           { return errFileDevice }
func (d *FileDevice) WriteAt(p []byte, off int64, c Class) error { return errFileDevice }
func (d *FileDevice) Trim(off, n int64) error                    { return errFileDevice }
func (d *FileDevice) Flush() error                               { return errFileDevice }
func (d *FileDevice) Close() error                               { return nil }
func (d *FileDevice) Stats() FileStats                           { return FileStats{} }
func (d *FileDevice) Placement() ([numClasses]int, bool)         { return [numClasses]int{-1, -1, -1}, false }
func (d *FileDevice) ReclaimUnitSize() int64                     { return 0 }
func (d *FileDevice) Passthrough() bool                          { return false }
