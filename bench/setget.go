package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"kvresp/internal/memsize"
)

// Rows of the setget workload.
const (
	rowSet = 0
	rowGet = 1
)

// pend is a command sent and not yet answered.
type pend struct {
	set   bool
	key   int
	start time.Time
}

func appendKey(b []byte, prefix string, i int) []byte {
	return strconv.AppendInt(append(b[:0], prefix...), int64(i), 10)
}

// setget runs plain SET/GET on one connection until it fails or the run is
// over, memtier-style: this goroutine writes, keeping up to -pipeline
// commands in flight, and a second one reads the replies in order. It
// returns errStopped when the run is over.
func (w *worker) setget() error {
	if err := w.connect(); err != nil {
		return err
	}
	cfg := w.r.cfg
	c := w.c
	inflight := make(chan pend, cfg.pipeline)
	slots := make(chan struct{}, cfg.pipeline)
	dead := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { readErr <- w.readReplies(c, inflight, slots, dead) }()

	var key []byte
	stopped := false
	cycle := cfg.setRatio + cfg.getRatio
loop:
	for n := 0; ; n++ {
		select {
		case slots <- struct{}{}:
		default:
			// Every slot is in flight: send what is queued, then wait.
			if c.pending() {
				if err := c.flush(); err != nil {
					c.close() // the reader reports it
					break loop
				}
			}
			select {
			case slots <- struct{}{}:
			case <-dead:
			}
		}
		if isClosed(dead) {
			break loop
		}
		if !w.r.claim() {
			stopped = true
			break loop
		}
		p := pend{set: n%cycle < cfg.setRatio, key: w.rng.IntN(cfg.keys)}
		key = appendKey(key, cfg.keyPrefix, p.key)
		if p.set {
			c.writeArrayHeader(3)
			c.writeBulkString("SET")
			c.writeBulk(key)
			w.r.pat.writeValue(c, key, int(cfg.valueSize))
		} else {
			c.writeArrayHeader(2)
			c.writeBulkString("GET")
			c.writeBulk(key)
		}
		p.start = time.Now()
		inflight <- p
	}
	if c.pending() && !isClosed(dead) {
		c.nc.SetWriteDeadline(time.Now().Add(cfg.timeout))
		if err := c.flush(); err != nil {
			c.close()
		}
	}
	close(inflight)
	if err := <-readErr; err != nil {
		w.c = nil
		if stopped || w.r.ctx.Err() != nil {
			return errStopped
		}
		return err
	}
	if stopped {
		return errStopped
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// readReplies reads one reply per pend until inflight is closed. On a
// connection error it records it, closes dead and c, and drains inflight.
func (w *worker) readReplies(c *conn, inflight <-chan pend, slots <-chan struct{}, dead chan<- struct{}) error {
	cfg := w.r.cfg
	var key []byte
	for p := range inflight {
		c.nc.SetReadDeadline(time.Now().Add(cfg.timeout))
		row, size := rowGet, int64(0)
		var err error
		o := none
		if p.set {
			row, size = rowSet, cfg.valueSize
			err = c.expectOK()
		} else {
			var b []byte
			var ok bool
			b, ok, err = c.readBulk(w.rbuf)
			key = appendKey(key, cfg.keyPrefix, p.key)
			if err == nil && ok {
				err = w.r.pat.verify(key, b, int(cfg.valueSize), w.vrng)
			}
			o, size = outcomeOf(ok), int64(len(b))
		}
		if err != nil {
			w.rec.fail(row, err)
			if isConnError(err) {
				close(dead)
				c.close()
				for range inflight {
				}
				return err
			}
		} else {
			w.rec.ok(row, p.start, size, o)
		}
		<-slots
	}
	return nil
}

// prefill writes every key once before the measured run, over cfg.conns
// connections; any error fails the run.
func prefill(ctx context.Context, cfg *config, pat *pattern, stderr io.Writer) error {
	start := time.Now()
	var (
		mu   sync.Mutex
		ferr error
		wg   sync.WaitGroup
	)
	for id := range cfg.conns {
		wg.Go(func() {
			err := func() error {
				c, err := openConn(cfg, false)
				if err != nil {
					return err
				}
				defer c.close()
				var key []byte
				for i := id; i < cfg.keys; i += cfg.conns {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					key = appendKey(key, cfg.keyPrefix, i)
					c.writeArrayHeader(3)
					c.writeBulkString("SET")
					c.writeBulk(key)
					pat.writeValue(c, key, int(cfg.valueSize))
					c.nc.SetDeadline(time.Now().Add(cfg.timeout))
					if err := c.flush(); err != nil {
						return err
					}
					if err := c.expectOK(); err != nil {
						return fmt.Errorf("SET %s: %w", key, err)
					}
				}
				return nil
			}()
			if err != nil {
				mu.Lock()
				ferr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ferr != nil {
		return fmt.Errorf("prefill: %w", ferr)
	}
	fmt.Fprintf(stderr, "bench: prefilled %d keys of %s in %.2fs\n", cfg.keys, memsize.Format(cfg.valueSize), time.Since(start).Seconds())
	return nil
}
