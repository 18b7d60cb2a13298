package store

import (
	"sync"
	"sync/atomic"
	"time"

	"kvresp/slab"
	"kvresp/tiers"
)

// demotion is an item on its way across boundary from: evicted from tier
// from to tier from+1, or (the upstream queue) from the node to the upstream. It
// holds a reference to the value until it is written. While it waits, reads
// find it (the key is in no tier meanwhile), and a write or delete of the key
// cancels it, so an old value never lands below a newer one.
type demotion struct {
	key  string
	item tiers.Item
	from int

	mu        sync.Mutex  // held while the value is written below
	cancelled atomic.Bool // set without mu; the writer checks it under mu
	written   bool
}

// demoter moves evicted items down one tier in the background through a
// bounded queue per tier boundary, each with its own writers, so that writers
// waiting on a full lower tier never hold up what that tier's own reclaim
// sends further down. A full queue makes the evicting goroutine wait (writers
// slow to the lower tier's speed) up to a bound, after which the item is
// dropped and counted: the bound breaks the cycle where the lower tier itself
// needs memory that only eviction can free.
type demoter struct {
	s       *Store
	ch      []chan *demotion // index: the boundary the items cross
	targets []tiers.Tier     // index: the boundary; where its items go
	wait    time.Duration
	what    string // in warnings: "demotion" or "upstream write"

	mu       sync.Mutex
	inflight map[string]*demotion
	gates    map[string]*gate // guarded by mu; see hold
	closed   []bool           // per boundary, guarded by sending
	// sending is held (read) while an item is sent on a channel and (write)
	// to close one, so that no send meets a closed channel.
	sending sync.RWMutex

	wg                       []sync.WaitGroup
	demoted, dropped, failed atomic.Uint64
	cancelled, hits          atomic.Uint64
	lastDropLog, lastFailLog atomic.Int64  // Unix second of the last warning of each kind
	cancelledLate            atomic.Uint64 // cancelled after their write: overwritten below
	// onWritten, when set, is told of each item written, under the item's
	// lock (a cancel of the key waits for it).
	onWritten func(key string)
	// onLost, when set, is told of each item that will not be written
	// (dropped or failed) unless a newer write of its key cancelled it.
	onLost func(key string)
}

// demoteWorkers is how many demotions are written at once: a lower tier that splits a value
// into 1 MiB I/Os sees 8 × 4 = 32 of them in flight for 4 MiB chunks, its default queue depth,
// where one writer at a time would leave it at 4. Two demotions of one key are never written
// at once: a write or delete of the key waits for a demotion being written (cancel), and a key
// is evicted again only after it was written or promoted back.
const demoteWorkers = 8

// newDemoter starts the writers of each boundary; targets[b] is the tier
// what crosses boundary b is written to.
func newDemoter(s *Store, what string, depth int, wait time.Duration, targets []tiers.Tier) *demoter {
	boundaries := len(targets)
	d := &demoter{s: s, what: what, wait: wait, inflight: map[string]*demotion{}, gates: map[string]*gate{}, targets: targets,
		ch: make([]chan *demotion, boundaries), closed: make([]bool, boundaries), wg: make([]sync.WaitGroup, boundaries)}
	for b := range d.ch {
		d.ch[b] = make(chan *demotion, depth)
		for range demoteWorkers {
			d.wg[b].Add(1)
			go d.run(b)
		}
	}
	return d
}

// register records an evicted item on its way down, taking a reference to
// its buffer. It never blocks: the evicting tier may call it under its own
// lock, so that a write or delete of the key that follows finds it and
// cancels it. send then queues it.
func (d *demoter) register(key string, it tiers.Item, from int) *demotion {
	it.Buf.Retain()
	dm := &demotion{key: key, item: it, from: from}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.inflight[key]; old != nil {
		if old.from < from {
			// The key is on its way down from a higher tier: that value is
			// the newer (a SET's, evicted while the SET cleared the lower
			// tiers), and it overwrites this older one below. This one is
			// dropped, as cancelled.
			dm.cancelled.Store(true)
			d.cancelled.Add(1)
			return dm
		}
		d.cancelLocked(old)
	}
	d.inflight[key] = dm
	return dm
}

// send queues a registered demotion, waiting for room (backpressure) up to
// d.wait, after which the item is dropped and counted.
func (d *demoter) send(dm *demotion) { d.sendWithin(dm, d.wait) }

// sendWithin is send waiting up to wait for room, or as long as it takes
// when wait is 0.
func (d *demoter) sendWithin(dm *demotion, wait time.Duration) {
	if dm.cancelled.Load() {
		dm.item.Buf.Release() // cancelled already (see register): nothing to write
		return
	}
	d.sending.RLock()
	defer d.sending.RUnlock()
	if d.closed[dm.from] {
		d.forget(dm)
		d.drop(dm)
		return
	}
	ch := d.ch[dm.from]
	if wait == 0 {
		ch <- dm
		return
	}
	select {
	case ch <- dm:
		return
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case ch <- dm:
	case <-t.C:
		d.forget(dm)
		d.drop(dm)
	}
}

// forget removes dm from the in-flight set if it is still there.
func (d *demoter) forget(dm *demotion) {
	d.mu.Lock()
	if d.inflight[dm.key] == dm {
		delete(d.inflight, dm.key)
	}
	d.mu.Unlock()
}

// drop releases a demotion that will not be written; it is counted and
// logged at most once a second.
func (d *demoter) drop(dm *demotion) {
	d.lost(dm)
	n := d.dropped.Add(1)
	if now := time.Now().Unix(); d.lastDropLog.Swap(now) != now {
		d.s.log.Warn(d.what+" queue full: items dropped", "key", dm.key, "dropped_total", n)
	}
	dm.item.Buf.Release()
}

// gate serialises the writes below of one key: a writer holds it while it
// writes a demotion of the key, and a SET or DEL holds it from its change
// of the first tier until it has cleared the tiers below and cancelled what
// was on its way down. In between, no value of the key lands below: neither
// an old one evicted before the change (written after the clearing, it would
// come back) nor the new one evicted at once (written before the clearing,
// it would be cleared away and lost).
type gate struct {
	mu   sync.Mutex
	refs int // guarded by demoter.mu
}

// hold takes key's gate and returns its release.
func (d *demoter) hold(key string) func() {
	d.mu.Lock()
	g := d.gates[key]
	if g == nil {
		g = &gate{}
		d.gates[key] = g
	}
	g.refs++
	d.mu.Unlock()
	g.mu.Lock()
	return func() {
		g.mu.Unlock()
		d.mu.Lock()
		if g.refs--; g.refs == 0 {
			delete(d.gates, key)
		}
		d.mu.Unlock()
	}
}

// cancelLocked marks dm cancelled and forgets it, without waiting.
func (d *demoter) cancelLocked(dm *demotion) {
	delete(d.inflight, dm.key)
	dm.cancelled.Store(true)
	d.cancelled.Add(1)
}

// cancel stops a pending demotion of key, reporting whether there was one;
// the caller holds key's lock and has just changed or deleted the key in the
// first tier. It returns once no write of the old value is in progress, so
// the caller's own writes below land after it.
func (d *demoter) cancel(key string) bool {
	return d.cancelExcept(key, nil)
}

// cancelExcept is cancel, except that a demotion of keep (the value the
// caller has just stored, evicted already) goes on.
func (d *demoter) cancelExcept(key string, keep *slab.Buf) bool {
	d.mu.Lock()
	dm := d.inflight[key]
	if dm != nil && keep != nil && dm.item.Buf == keep {
		dm = nil
	}
	if dm != nil {
		d.cancelLocked(dm)
	}
	d.mu.Unlock()
	if dm != nil {
		// Wait, outside d.mu, for a write of it that already began.
		dm.mu.Lock()
		if dm.written {
			d.cancelledLate.Add(1) // the old value is below: the caller's delete follows it
		}
		dm.mu.Unlock()
	}
	return dm != nil
}

// len is the number of demotions waiting.
func (d *demoter) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.inflight)
}

// meta reports a waiting demotion's size and expiry.
func (d *demoter) meta(key string) (tiers.Meta, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dm := d.inflight[key]
	if dm == nil {
		return tiers.Meta{}, false
	}
	return tiers.Meta{Size: int64(dm.item.Buf.Len()), ExpireAt: dm.item.ExpireAt}, true
}

// find returns a waiting demotion's item with a reference for the caller.
func (d *demoter) find(key string) (tiers.Item, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dm := d.inflight[key]
	if dm == nil {
		return tiers.Item{}, false
	}
	dm.item.Buf.Retain()
	d.hits.Add(1)
	return dm.item, true
}

// run writes what leaves tier b.
func (d *demoter) run(b int) {
	defer d.wg[b].Done()
	// After failStreak failures in a row (of this worker) the next tier is
	// taken to be failing: for a second, demotions are dropped at once
	// (counted) rather than each waiting on it, so DRAM frees memory and
	// keeps serving.
	const failStreak = 3
	streak := 0
	var pauseUntil time.Time
	for dm := range d.ch[b] {
		release := d.hold(dm.key)
		dm.mu.Lock()
		switch {
		case dm.cancelled.Load():
		case streak >= failStreak && time.Now().Before(pauseUntil):
			d.failed.Add(1)
			d.lost(dm)
		default:
			next := d.targets[dm.from]
			if err := next.Put(dm.key, dm.item); err != nil {
				d.failed.Add(1)
				d.lost(dm)
				if streak++; streak >= failStreak {
					pauseUntil = time.Now().Add(time.Second)
				}
				if now := time.Now().Unix(); d.lastFailLog.Swap(now) != now {
					d.s.log.Warn(d.what+" failed: items dropped", "key", dm.key, "tier", next.Name(), "err", err, "failed_total", d.failed.Load())
				}
			} else {
				streak = 0
				dm.written = true
				d.demoted.Add(1)
				if d.onWritten != nil {
					d.onWritten(dm.key)
				}
			}
		}
		dm.mu.Unlock()
		d.forget(dm)
		release()
		dm.item.Buf.Release()
	}
}

// lost tells onLost of an item that will not be written.
func (d *demoter) lost(dm *demotion) {
	if d.onLost != nil && !dm.cancelled.Load() {
		d.onLost(dm.key)
	}
}

// close writes what is queued and stops the writers, from the top boundary
// down: what the lower tiers evict while the upper queues drain still goes
// down.
func (d *demoter) close() {
	for b := range d.ch {
		d.sending.Lock()
		if d.closed[b] {
			d.sending.Unlock()
			continue
		}
		d.closed[b] = true
		close(d.ch[b])
		d.sending.Unlock()
		d.wg[b].Wait()
		// What was written across b may have made its target reclaim in the background: let
		// that finish while the next boundary still takes what it evicts.
		if r, ok := d.targets[b].(interface{ WaitReclaim() }); ok {
			r.WaitReclaim()
		}
	}
}

// setExpire changes the expiry of a waiting demotion, reporting whether
// there was one not yet written.
func (d *demoter) setExpire(key string, at int64) bool {
	d.mu.Lock()
	dm := d.inflight[key]
	d.mu.Unlock() // not held while a write of dm holds dm.mu
	if dm == nil {
		return false
	}
	dm.mu.Lock()
	defer dm.mu.Unlock()
	if dm.cancelled.Load() || dm.written {
		return false
	}
	dm.item.ExpireAt = at
	return true
}

// cancelAll cancels every waiting demotion (FLUSHALL).
func (d *demoter) cancelAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dm := range d.inflight {
		d.cancelLocked(dm)
	}
}
