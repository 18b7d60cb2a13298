package rawblock

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// gateDevice, once armed, counts flushes and holds the first one until release is closed.
type gateDevice struct {
	Device
	entered chan struct{} // closed when the first Flush is held
	release chan struct{}
	mu      sync.Mutex
	armed   bool
	flushes int
}

func (d *gateDevice) arm() {
	d.mu.Lock()
	d.armed = true
	d.mu.Unlock()
}

func (d *gateDevice) Flush() error {
	d.mu.Lock()
	if d.armed {
		d.flushes++
	}
	first := d.armed && d.flushes == 1
	d.mu.Unlock()
	if first {
		close(d.entered)
		<-d.release
	}
	return d.Device.Flush()
}

// Puts that must be durable (Options.Sync) at the same time share device flushes: while one
// flush runs, the writers that completed behind it wait and are covered by one more flush
// between them, not one each.
func TestGroupCommit(t *testing.T) {
	a := newArena(t)
	dev := &gateDevice{Device: NewMemDevice(64<<20, 4096, false), entered: make(chan struct{}), release: make(chan struct{})}
	e := open(t, dev, a, func(o *Options) { o.Sync = true })
	dev.arm()

	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	wg.Add(1)
	go func() { // the first writer: its flush is held at the gate
		defer wg.Done()
		errs <- put(t, e, a, "first", value(5000, 0), 0)
	}()
	<-dev.entered
	writesBefore := e.EngineStats().Writes
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- put(t, e, a, fmt.Sprintf("k%d", i), value(5000, i+1), 0)
		}()
	}
	// Let every writer's entry reach the device before the first flush completes.
	for deadline := time.Now().Add(10 * time.Second); e.EngineStats().Writes < writesBefore+writers; {
		if time.Now().After(deadline) {
			t.Fatalf("writes did not complete: %d of %d", e.EngineStats().Writes-writesBefore, writers)
		}
		time.Sleep(time.Millisecond)
	}
	close(dev.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	dev.mu.Lock()
	flushes := dev.flushes
	dev.mu.Unlock()
	if flushes != 2 {
		t.Errorf("%d durable Puts took %d device flushes, want 2 (the held one and one for the rest)", writers+1, flushes)
	}
	for i := range writers {
		wantValue(t, e, fmt.Sprintf("k%d", i), value(5000, i+1))
	}
}
