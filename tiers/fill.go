package tiers

import (
	"context"
	"sync"
)

// Fill tracks a value that is still arriving into its buffer (a read-through
// from an upstream that streams): the bytes below Filled are final, the rest
// are not there yet. A reader sends what is filled as it comes (cut-through:
// a client's GET is answered at the upstream's pace, not after it) and must
// treat the value as valid only once Wait reports it done without an error.
type Fill struct {
	mu     sync.Mutex
	cond   sync.Cond
	n      int
	done   bool
	err    error
	doneCh chan struct{}
}

// NewFill tracks a value of which nothing has arrived yet.
func NewFill() *Fill {
	f := &Fill{doneCh: make(chan struct{})}
	f.cond.L = &f.mu
	return f
}

// Progress says the first n bytes have arrived.
func (f *Fill) Progress(n int) {
	f.mu.Lock()
	if n > f.n {
		f.n = n
		f.cond.Broadcast()
	}
	f.mu.Unlock()
}

// Finish says the value is complete (err nil) or will never be (err set).
// Only the first call counts.
func (f *Fill) Finish(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return
	}
	f.done, f.err = true, err
	close(f.doneCh)
	f.cond.Broadcast()
}

// Wait blocks until more than have bytes have arrived or the fill is over,
// and reports how many have arrived, whether it is over, and how it ended.
func (f *Fill) Wait(have int) (n int, done bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.n <= have && !f.done {
		f.cond.Wait()
	}
	return f.n, f.done, f.err
}

// Done is closed when the fill is over.
func (f *Fill) Done() <-chan struct{} { return f.doneCh }

// Err is how the fill ended; call it after Done is closed.
func (f *Fill) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Streamer is implemented by upstream backends that hand a value out while
// it is still arriving. GetStream returns once the value's size and expiry
// are known, with it.Buf of the full length and a Fill the backend finishes
// when the rest has arrived (or failed); ctx bounds the whole transfer, and
// the backend keeps using it until then.
type Streamer interface {
	GetStream(ctx context.Context, key string, alloc Alloc) (it Item, f *Fill, ok bool, err error)
}
