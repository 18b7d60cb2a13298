package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"kvresp/tiers"
)

// UpstreamModes say how the store uses its upstream.
type UpstreamModes struct {
	// ReadThrough: a local miss asks the upstream, and a value found there
	// is admitted into the first tier.
	ReadThrough bool
	// WriteThrough: a SET is written upstream before it is acknowledged.
	// An upstream that fails (or whose breaker is open) does not fail the
	// SET: the value is kept locally, the failure counted.
	WriteThrough bool
	// WriteThroughAsync: a SET is queued for the upstream and acknowledged
	// at once; a full queue makes the SET wait (backpressure) up to a bound.
	WriteThroughAsync bool
	// WriteBack: what the last local tier evicts goes upstream, unless the
	// upstream holds that very value already.
	WriteBack bool
	// Exists: EXISTS, TTL, STRLEN and the conditions of SET (NX, XX) see
	// keys that only the upstream holds.
	Exists bool
	// Delete: DEL removes the key upstream too, and a SET that is not
	// written through removes the upstream's older value (else a later
	// read-through would bring it back).
	Delete bool
}

// UpstreamModeNames are the modes in the order String writes them.
var UpstreamModeNames = []string{"read-through", "write-through", "write-through-async", "write-back", "exists", "del"}

// DefaultUpstreamModes is what an upstream is used for unless told: a
// shared cache that every node reads through, writes to without waiting,
// asks about keys and deletes in.
const DefaultUpstreamModes = "read-through,write-through-async,exists,del"

func (m *UpstreamModes) flag(name string) *bool {
	switch name {
	case "read-through":
		return &m.ReadThrough
	case "write-through":
		return &m.WriteThrough
	case "write-through-async":
		return &m.WriteThroughAsync
	case "write-back":
		return &m.WriteBack
	case "exists":
		return &m.Exists
	case "del":
		return &m.Delete
	}
	return nil
}

// ParseUpstreamModes parses a comma list of mode names ("none" or the empty
// string for none).
func ParseUpstreamModes(s string) (UpstreamModes, error) {
	var m UpstreamModes
	if s = strings.TrimSpace(s); s == "" || strings.EqualFold(s, "none") {
		return m, nil
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		f := m.flag(name)
		if f == nil {
			return UpstreamModes{}, fmt.Errorf("unknown upstream mode %q (modes: %s)", name, strings.Join(UpstreamModeNames, ", "))
		}
		*f = true
	}
	return m, m.validate()
}

func (m UpstreamModes) validate() error {
	if m.WriteThrough && m.WriteThroughAsync {
		return errors.New("upstream modes write-through and write-through-async exclude each other")
	}
	return nil
}

// String is the comma list ParseUpstreamModes reads back ("none" for none).
func (m UpstreamModes) String() string {
	var names []string
	for _, n := range UpstreamModeNames {
		if *m.flag(n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// writes reports whether the store writes to the upstream at all.
func (m UpstreamModes) writes() bool { return m.WriteThrough || m.WriteThroughAsync || m.WriteBack }

// upstream is the store's side of the upstream. Operations on a key happen
// under its key lock, as for the local tiers. Upstream failures never fail
// a command: the upstream (a tiers.Proxy) counts them, and the node answers
// from its local tiers.
type upstream struct {
	up   tiers.Tier // nil without an upstream
	mode UpstreamModes
	upq  *demoter // write-through-async and write-back; nil without them

	// held is the set of keys (by hash) whose local value the upstream
	// holds identically: read through, or written through. An eviction of
	// such a key needs no write-back. It is lost at a restart (costing a
	// redundant write-back, never a missing one); a hash collision can at
	// worst skip the write-back of another key, a later miss, not wrong
	// bytes.
	heldMu sync.Mutex
	held   map[uint64]struct{}

	// reading holds the values being read through whose transfer is not
	// over: a GET of the key meanwhile shares the transfer, a write or
	// delete of it cancels the admission. Each holds a reference to the
	// buffer the upstream fills until the transfer is over.
	readingMu sync.Mutex
	reading   map[string]*readThrough
	readingWG sync.WaitGroup // the transfers' goroutines, waited for by Close

	// stale holds the keys whose upstream copy may be older than what this
	// node acknowledged: a DEL, a write or an expiry change the upstream
	// did not take. Read-through and EXISTS skip the upstream for them
	// (else the older value would come back), and a retrier deletes the
	// upstream's copy until it succeeds. Past maxStale keys the set stops
	// growing and the upstream is not read at all any more (staleFull):
	// never an older value, at the cost of the upstream's hits.
	staleMu   sync.Mutex
	stale     map[string]struct{}
	staleFull atomic.Bool
	retryStop chan struct{}
	retryDone chan struct{}
	stopRetry sync.Once
	wroteBack atomic.Bool // writeBackAll ran (Close may be called again)

	admitted, writeFailed, heldSkips, joined atomic.Uint64
	lastFailLog                              atomic.Int64
}

// UpstreamStats are the store's upstream counters.
type UpstreamStats struct {
	Modes string
	// Admitted counts values read through into the first tier; Joined
	// reads that shared a read-through under way;
	// WriteFailed synchronous write-throughs that failed (the SET was kept
	// locally); HeldSkips evictions not written back because the upstream
	// held the value already.
	Admitted, Joined, WriteFailed, HeldSkips uint64
	// Stale is how many keys wait for their upstream copy to be deleted
	// (see Store.stale); StaleFull says the set overflowed and the upstream
	// is no longer read.
	Stale     int
	StaleFull bool
	// Queue: writes waiting for the upstream, and the queue's counters.
	Queued, QueueCap                              int
	Written, Dropped, Failed, Cancelled, QueueHit uint64
}

func (s *Store) initUpstream(o Options) {
	s.up, s.mode, s.held, s.reading = o.Upstream, o.UpstreamModes, map[uint64]struct{}{}, map[string]*readThrough{}
	s.stale, s.retryStop, s.retryDone = map[string]struct{}{}, make(chan struct{}), make(chan struct{})
	every := o.staleRetry
	if every == 0 {
		every = staleRetry
	}
	go s.retryStale(every)
	if s.mode.WriteBack || s.mode.WriteThroughAsync {
		depth, wait := o.UpstreamQueue, o.UpstreamWait
		if depth == 0 {
			depth = 64
		}
		if wait == 0 {
			wait = o.DemoteWait
		}
		s.upq = newDemoter(s, "upstream write", depth, wait, []tiers.Tier{s.up})
		s.upq.onWritten = func(key string) {
			s.setHeld(key)
			s.unmarkStale(key)
		}
		s.upq.onLost = s.markStale
	}
}

// maxStale bounds the stale set (about 100 bytes a key).
const maxStale = 1 << 20

// staleRetry is how often the retrier tries to delete stale upstream copies.
const staleRetry = 500 * time.Millisecond

func (s *Store) markStale(key string) {
	s.staleMu.Lock()
	defer s.staleMu.Unlock()
	if len(s.stale) >= maxStale {
		if !s.staleFull.Swap(true) {
			s.log.Error("too many keys wait for the upstream to take their deletes: the upstream is no longer read (restart once it is back)", "keys", len(s.stale))
		}
		return
	}
	s.stale[key] = struct{}{}
}

func (s *Store) unmarkStale(key string) {
	s.staleMu.Lock()
	delete(s.stale, key)
	s.staleMu.Unlock()
}

// isStale reports whether the upstream's copy of key must not be read.
func (s *Store) isStale(key string) bool {
	if s.staleFull.Load() {
		return true
	}
	s.staleMu.Lock()
	defer s.staleMu.Unlock()
	_, ok := s.stale[key]
	return ok
}

// retryStale deletes the upstream copies of stale keys every interval until
// Close.
func (s *Store) retryStale(every time.Duration) {
	defer close(s.retryDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.retryStop:
			return
		case <-t.C:
		}
		s.retryStaleOnce()
	}
}

// retryStaleOnce tries to delete the upstream copy of each stale key, until
// one fails (the upstream is failing: the next round) or Close.
func (s *Store) retryStaleOnce() {
	s.staleMu.Lock()
	keys := make([]string, 0, len(s.stale))
	for k := range s.stale {
		keys = append(keys, k)
	}
	s.staleMu.Unlock()
	for _, key := range keys {
		select {
		case <-s.retryStop:
			return
		default:
		}
		// Under the key's lock and, for the queue's writes (which take no
		// key lock), its gate in the queue: a write that makes the
		// upstream's copy current (and unmarks the key) is not undone.
		mu := s.lock(key)
		mu.Lock()
		release := func() {}
		if s.upq != nil {
			release = s.upq.hold(key)
		}
		var err error
		if s.isStale(key) {
			if _, err = s.up.Delete(key); err == nil {
				s.unmarkStale(key)
			}
		}
		release()
		mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *Store) setHeld(key string) {
	s.heldMu.Lock()
	s.held[xxhash.Sum64String(key)] = struct{}{}
	s.heldMu.Unlock()
}

// heldUp reports whether the upstream holds key's value, which then needs
// no writing back (counted), and forgets that it does.
func (s *Store) heldUp(key string) bool {
	if s.takeHeld(key) {
		s.heldSkips.Add(1)
		return true
	}
	return false
}

// takeHeld reports whether the upstream holds key's value, forgetting it.
func (s *Store) takeHeld(key string) bool {
	h := xxhash.Sum64String(key)
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	_, ok := s.held[h]
	delete(s.held, h)
	return ok
}

// evictedLast handles a key the last local tier dropped: with write-back it
// goes upstream unless held there already. Its LMCache companion stays when
// the chunk is upstream.
func (s *Store) evictedLast(key string, it tiers.Item) func() {
	if s.heldUp(key) {
		return func() { s.forget(key, false) }
	}
	if s.mode.WriteBack && it.Buf != nil {
		dm := s.upq.register(key, it, 0)
		return func() {
			s.upq.send(dm)
			s.forget(key, false)
		}
	}
	return func() { s.forget(key, true) }
}

// writeBackAll sends up, through the write queue, every value of the only
// local tier that the upstream does not hold, when the store closes: with
// write-back that tier's values reach the upstream only when evicted, and a
// node with no persistent tier below DRAM would otherwise lose at shutdown
// what it acknowledged. It waits for room in the queue as long as it takes
// (each write has its deadline), drains the queue, and reports the values
// that did not make it.
func (s *Store) writeBackAll() error {
	if s.wroteBack.Swap(true) {
		return nil
	}
	q := s.upq
	written, dropped, failed := q.demoted.Load(), q.dropped.Load(), q.failed.Load()
	sent := 0
	for _, key := range s.dirtyKeys() {
		mu := s.lock(key)
		mu.Lock()
		if s.heldUp(key) { // as on eviction (evictedLast)
			mu.Unlock()
			continue
		}
		it, ok, err := s.tiers[0].Get(key)
		if err != nil || !ok {
			mu.Unlock()
			continue
		}
		dm := q.register(key, it, 0)
		it.Buf.Release() // the demotion holds its own reference
		mu.Unlock()
		q.sendWithin(dm, 0)
		sent++
	}
	q.close() // drains the queue; closeUpstream's close is then a no-op
	w, dr, f := q.demoted.Load()-written, q.dropped.Load()-dropped, q.failed.Load()-failed
	s.log.Info("wrote DRAM back to the upstream", "items", sent, "written", w, "dropped", dr, "failed", f)
	if dr+f > 0 {
		return fmt.Errorf("write-back at shutdown: %d values did not reach the upstream (%d dropped, %d failed)", dr+f, dr, f)
	}
	return nil
}

// readThrough is a value being read through from the upstream.
type readThrough struct {
	it   tiers.Item // its own reference to the buffer
	fill *tiers.Fill
}

// streamer is an upstream that can hand a value out while it arrives
// (tiers.Proxy over a tiers.Streamer).
type streamer interface {
	GetStream(key string) (tiers.Item, *tiers.Fill, bool, error)
}

// getUpstream finds key on its way up or, with read-through, upstream,
// admitting what it finds into the first tier. The caller holds the key's
// lock and found it in no local tier. A value still arriving comes with its
// Fill when stream is set; otherwise getUpstream waits for it.
func (s *Store) getUpstream(key string, stream bool) (tiers.Item, *tiers.Fill, bool) {
	if s.upq != nil {
		if it, ok := s.upq.find(key); ok {
			return it, nil, true
		}
	}
	if !s.mode.ReadThrough || s.isStale(key) {
		return tiers.Item{}, nil, false
	}
	s.readingMu.Lock()
	rt := s.reading[key]
	if rt != nil {
		rt.it.Buf.Retain()
		s.joined.Add(1)
	}
	s.readingMu.Unlock()
	if rt == nil {
		var it tiers.Item
		var fill *tiers.Fill
		var ok bool
		var err error
		if st, can := s.up.(streamer); can {
			it, fill, ok, err = st.GetStream(key)
		} else {
			it, ok, err = s.up.Get(key)
		}
		if err != nil || !ok {
			return tiers.Item{}, nil, false
		}
		if fill == nil {
			return s.admit(key, it)
		}
		s.readingWG.Add(1)
		if it.ExpireAt != 0 && it.ExpireAt <= s.now() {
			// Not served, but the buffer is the upstream's until the
			// transfer is over.
			go func() {
				defer s.readingWG.Done()
				<-fill.Done()
				it.Buf.Release()
			}()
			return tiers.Item{}, nil, false
		}
		rt = &readThrough{it: it, fill: fill}
		it.Buf.Retain() // the caller's
		s.readingMu.Lock()
		s.reading[key] = rt
		s.readingMu.Unlock()
		go s.readThroughDone(key, rt)
	}
	if !stream {
		<-rt.fill.Done()
		if rt.fill.Err() != nil {
			rt.it.Buf.Release()
			return tiers.Item{}, nil, false
		}
		return rt.it, nil, true
	}
	return rt.it, rt.fill, true
}

// admit puts a value read whole from the upstream into the first tier and
// returns it (with the caller's reference), unless it has expired.
func (s *Store) admit(key string, it tiers.Item) (tiers.Item, *tiers.Fill, bool) {
	if it.ExpireAt != 0 && it.ExpireAt <= s.now() {
		it.Buf.Release()
		return tiers.Item{}, nil, false
	}
	// Marked before the Put so that an eviction the Put causes at once
	// already knows the upstream has it.
	s.setHeld(key)
	if err := s.tiers[0].Put(key, tiers.Item{Buf: it.Buf, ExpireAt: it.ExpireAt}); err != nil {
		s.takeHeld(key)
	} else {
		s.admitted.Add(1)
	}
	return it, nil, true
}

// readThroughDone waits for a read-through's transfer and admits the value
// unless the key was written or deleted meanwhile or the transfer failed.
func (s *Store) readThroughDone(key string, rt *readThrough) {
	defer s.readingWG.Done()
	<-rt.fill.Done()
	mu := s.lock(key)
	mu.Lock()
	s.readingMu.Lock()
	// A write, delete or FLUSHALL of the key took it out (cancelled it).
	cancelled := s.reading[key] != rt
	if !cancelled {
		delete(s.reading, key)
	}
	s.readingMu.Unlock()
	if !cancelled && rt.fill.Err() == nil {
		rt.it.Buf.Retain() // admit takes a reference and gives it back
		if it, _, ok := s.admit(key, rt.it); ok {
			it.Buf.Release()
		}
	}
	mu.Unlock()
	rt.it.Buf.Release()
}

// cancelReadThrough stops the admission of a value of key being read
// through; the caller holds the key's lock and is changing the key.
func (s *Store) cancelReadThrough(key string) {
	s.readingMu.Lock()
	delete(s.reading, key)
	s.readingMu.Unlock()
}

// statUpstream reports key's size and expiry from the upstream queue or,
// with the exists mode, the upstream.
func (s *Store) statUpstream(key string) (tiers.Meta, bool) {
	if s.upq != nil {
		if m, ok := s.upq.meta(key); ok {
			return m, true
		}
	}
	if !s.mode.Exists || s.isStale(key) {
		return tiers.Meta{}, false
	}
	m, ok, err := s.up.Stat(key)
	if err != nil || !ok || (m.ExpireAt != 0 && m.ExpireAt <= s.now()) {
		return tiers.Meta{}, false
	}
	return m, true
}

// setUpstream sends a value just stored locally upstream, as the modes say.
// A queued older write of the key is cancelled first (waiting for one being
// written), so the older value never lands after the newer.
func (s *Store) setUpstream(key string, it tiers.Item) {
	s.cancelReadThrough(key)
	if s.upq != nil {
		s.upq.cancel(key)
	}
	s.takeHeld(key)
	switch {
	case s.mode.WriteThrough:
		if err := s.up.Put(key, it); err != nil {
			s.markStale(key)
			s.writeFailed.Add(1)
			if now := time.Now().Unix(); s.lastFailLog.Swap(now) != now {
				s.log.Warn("write-through failed: the value is kept locally only", "key", key, "err", err)
			}
			return
		}
		s.setHeld(key)
		s.unmarkStale(key)
	case s.mode.WriteThroughAsync:
		s.upq.send(s.upq.register(key, it, 0))
	case s.mode.Delete:
		s.deleteUp(key)
	}
}

// deleteUpstream removes key from the upstream queue and, with the del
// mode, from the upstream, reporting whether either held it.
func (s *Store) deleteUpstream(key string) bool {
	s.cancelReadThrough(key)
	found := false
	if s.upq != nil && s.upq.cancel(key) {
		found = true
	}
	s.takeHeld(key)
	if s.mode.Delete && s.deleteUp(key) {
		found = true
	}
	return found
}

// deleteUp deletes key upstream, reporting whether it was there; a delete
// the upstream does not take leaves the key stale.
func (s *Store) deleteUp(key string) bool {
	ok, err := s.up.Delete(key)
	if err != nil {
		s.markStale(key)
		return false
	}
	s.unmarkStale(key)
	return ok
}

// setExpireUpstream changes key's expiry on its way up and upstream when the
// store writes there or the key was found only there; it reports whether an
// expiry changed there.
func (s *Store) setExpireUpstream(key string, at int64, onlyUpstream bool) bool {
	// A value still arriving would be admitted with its old expiry.
	s.cancelReadThrough(key)
	if !onlyUpstream && !s.mode.writes() {
		return false
	}
	changed := s.upq != nil && s.upq.setExpire(key, at)
	ok, err := s.up.SetExpire(key, at)
	if err != nil {
		// The upstream's copy keeps its old expiry.
		s.takeHeld(key)
		s.markStale(key)
	}
	return changed || (ok && onlyUpstream)
}

// flushUpstream drops what waits for the upstream (FLUSHALL). The upstream
// itself is shared by the fleet and is never flushed.
func (s *Store) flushUpstream() {
	if s.upq != nil {
		s.upq.cancelAll()
	}
	s.readingMu.Lock()
	clear(s.reading)
	s.readingMu.Unlock()
	s.heldMu.Lock()
	clear(s.held)
	s.heldMu.Unlock()
}

// closeUpstream writes what is queued for the upstream and stops its writers.
func (s *Store) closeUpstream() {
	if s.upq != nil {
		s.upq.close()
	}
	s.stopRetry.Do(func() { close(s.retryStop) })
	<-s.retryDone
	s.readingWG.Wait() // each ends by the upstream's deadline
}

func (s *Store) upstreamStats() *UpstreamStats {
	st := &UpstreamStats{Modes: s.mode.String(), Admitted: s.admitted.Load(), Joined: s.joined.Load(), WriteFailed: s.writeFailed.Load(),
		HeldSkips: s.heldSkips.Load()}
	if d := s.upq; d != nil {
		st.Queued, st.QueueCap = d.len(), cap(d.ch[0])
		st.Written, st.Dropped, st.Failed = d.demoted.Load(), d.dropped.Load(), d.failed.Load()
		st.Cancelled, st.QueueHit = d.cancelled.Load(), d.hits.Load()
	}
	s.staleMu.Lock()
	st.Stale = len(s.stale)
	s.staleMu.Unlock()
	st.StaleFull = s.staleFull.Load()
	return st
}
