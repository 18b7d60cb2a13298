//go:build !linux

package uring

import (
	"errors"
	"time"
)

// Ring is one io_uring instance. io_uring exists only on Linux: here New always fails with
// errors.ErrUnsupported, and the methods exist so that callers build everywhere.
type Ring struct{}

// New returns errors.ErrUnsupported: io_uring is Linux only.
func New(p Params) (*Ring, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return nil, errUnsupported
}

var errUnsupported = errors.Join(errors.New("uring: io_uring needs Linux"), errors.ErrUnsupported)

func (r *Ring) Close() error                                            { return nil }
func (r *Ring) Fd() int                                                 { return -1 }
func (r *Ring) SetupFlags() uint32                                      { return 0 }
func (r *Ring) Features() uint32                                        { return 0 }
func (r *Ring) SQEntries() uint32                                       { return 0 }
func (r *Ring) CQEntries() uint32                                       { return 0 }
func (r *Ring) CQOverflow() uint32                                      { return 0 }
func (r *Ring) SQSpace() uint32                                         { return 0 }
func (r *Ring) GetSQE() *SQE                                            { return nil }
func (r *Ring) Cmd(s *SQE) *[80]byte                                    { panic("BUG: uring: Cmd without a ring") }
func (r *Ring) Submit() (int, error)                                    { return 0, errUnsupported }
func (r *Ring) SubmitAndWait(n uint32) (int, error)                     { return 0, errUnsupported }
func (r *Ring) SubmitAndWaitTimeout(uint32, time.Duration) (int, error) { return 0, errUnsupported }
func (r *Ring) CQReady() uint32                                         { return 0 }
func (r *Ring) PeekCQE() (CQE, bool)                                    { return CQE{}, false }
func (r *Ring) PeekBatchCQE(dst []CQE) int                              { return 0 }
func (r *Ring) CQAdvance(n uint32)                                      {}
func (r *Ring) CQESeen()                                                {}
func (r *Ring) WaitCQE() (CQE, error)                                   { return CQE{}, errUnsupported }
func (r *Ring) WaitCQETimeout(time.Duration) (CQE, error)               { return CQE{}, errUnsupported }
func (r *Ring) RegisterBuffers(bufs [][]byte) error                     { return errUnsupported }
func (r *Ring) UnregisterBuffers() error                                { return errUnsupported }
func (r *Ring) RegisterBuffersSparse(n int) error                       { return errUnsupported }
func (r *Ring) UpdateBuffers(off int, bufs [][]byte) error              { return errUnsupported }
func (r *Ring) RegisterFiles(fds []int) error                           { return errUnsupported }
func (r *Ring) UnregisterFiles() error                                  { return errUnsupported }
func (r *Ring) Probe() (*Probe, error)                                  { return nil, errUnsupported }
