package rawblock

import (
	"sync"
	"sync/atomic"
)

// Op names a Device operation, for FaultDevice.
type Op uint8

// Operations a Fault can match.
const (
	OpRead Op = iota
	OpWrite
	OpTrim
	OpFlush
)

// Fault makes a FaultDevice fail matching operations with Err.
type Fault struct {
	Op Op
	// From and To bound the offsets matched: an operation overlapping [From, To) matches.
	// To == 0 means no bound. Flush has no offset and matches regardless.
	From, To int64
	// Skip lets the first Skip matching operations through; Count then fails the next Count
	// (0 = every one).
	Skip, Count int
	Err         error
}

// FaultDevice wraps a Device and fails chosen operations, for tests of error paths.
type FaultDevice struct {
	Device

	mu     sync.Mutex
	faults []*faultState
	hits   atomic.Uint64
}

type faultState struct {
	Fault
	seen, failed int
}

var _ Device = (*FaultDevice)(nil)

// NewFaultDevice wraps d with no faults armed.
func NewFaultDevice(d Device) *FaultDevice { return &FaultDevice{Device: d} }

// Inject arms f.
func (f *FaultDevice) Inject(fl Fault) {
	f.mu.Lock()
	f.faults = append(f.faults, &faultState{Fault: fl})
	f.mu.Unlock()
}

// Clear disarms every fault.
func (f *FaultDevice) Clear() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

// Injected is the number of operations failed so far.
func (f *FaultDevice) Injected() uint64 { return f.hits.Load() }

func (f *FaultDevice) fail(op Op, off, n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.faults {
		if s.Op != op {
			continue
		}
		if op != OpFlush && (off+n <= s.From || (s.To != 0 && off >= s.To)) {
			continue
		}
		s.seen++
		if s.seen <= s.Skip || (s.Count > 0 && s.failed >= s.Count) {
			continue
		}
		s.failed++
		f.hits.Add(1)
		return s.Err
	}
	return nil
}

// ReadAt implements Device.
func (f *FaultDevice) ReadAt(p []byte, off int64) error {
	if err := f.fail(OpRead, off, int64(len(p))); err != nil {
		return err
	}
	return f.Device.ReadAt(p, off)
}

// WriteAt implements Device. A failed write writes nothing.
func (f *FaultDevice) WriteAt(p []byte, off int64, c Class) error {
	if err := f.fail(OpWrite, off, int64(len(p))); err != nil {
		return err
	}
	return f.Device.WriteAt(p, off, c)
}

// Trim implements Device.
func (f *FaultDevice) Trim(off, n int64) error {
	if err := f.fail(OpTrim, off, n); err != nil {
		return err
	}
	return f.Device.Trim(off, n)
}

// Flush implements Device.
func (f *FaultDevice) Flush() error {
	if err := f.fail(OpFlush, 0, 0); err != nil {
		return err
	}
	return f.Device.Flush()
}
