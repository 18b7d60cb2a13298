package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// config is the parsed command line of one run.
type config struct {
	addr      string
	workload  string
	conns     int
	duration  time.Duration // 0: until requests are done
	requests  int64         // 0: until duration is over
	valueSize int64
	keys      int
	setRatio  int
	getRatio  int
	pipeline  int
	password  string
	progress  time.Duration
	seed      uint64
	prefill   bool
	timeout   time.Duration
	keyPrefix string
	model     string
	chunks    int
	reuse     float64
}

// Workload names.
const (
	wlSetGet       = "setget"
	wlLMCacheResp  = "lmcache-resp"
	wlLMCacheRedis = "lmcache-redis"
)

// metadataLen is the size of LMCache's metadata value (redis:// backend).
const metadataLen = 28

// errStopped ends a worker's loop: the run is over.
var errStopped = errors.New("bench: run over")

// run is one measured run: shared state of its workers.
type run struct {
	cfg     *config
	pat     *pattern
	live    live
	ctx     context.Context
	tickets atomic.Int64
	convs   *convPool
	rows    []string
}

// claim takes one command from the budget; false when the run is over.
func (r *run) claim() bool {
	if r.ctx.Err() != nil {
		return false
	}
	return r.cfg.requests == 0 || r.tickets.Add(-1) >= 0
}

func rowsOf(workload string) []string {
	switch workload {
	case wlSetGet:
		return []string{"SET", "GET"}
	case wlLMCacheResp:
		return []string{"EXISTS", "GET", "SET"}
	case wlLMCacheRedis:
		return []string{"EXISTS metadata", "GET metadata", "GET kv_bytes", "DEL metadata", "SET kv_bytes", "SET metadata"}
	}
	return nil
}

// worker drives one connection.
type worker struct {
	r          *run
	id         int
	rec        *recorder
	rng        *rand.Rand
	vrng       *rand.Rand // picks verified bytes; setget's reader goroutine owns it
	c          *conn
	rbuf       []byte // GET replies land here; one value's size, reused
	chunks     Chunks
	dialErrors int64
}

// execute runs cfg against cfg.addr and returns its result; the error is
// for setup problems only (errors during the run are counted).
func execute(ctx context.Context, cfg *config, stderr io.Writer) (*Result, error) {
	r := &run{cfg: cfg, pat: newPattern(int(cfg.valueSize)), rows: rowsOf(cfg.workload)}
	if cfg.workload != wlSetGet {
		r.convs = newConvPool(cfg.keys, cfg.chunks, cfg.reuse)
	}
	if cfg.prefill && cfg.workload == wlSetGet {
		if err := prefill(ctx, cfg, r.pat, stderr); err != nil {
			return nil, err
		}
	}
	r.tickets.Store(cfg.requests)
	var cancel context.CancelFunc
	if cfg.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	r.ctx = ctx

	workers := make([]*worker, cfg.conns)
	for i := range workers {
		workers[i] = &worker{
			r:    r,
			id:   i,
			rec:  newRecorder(len(r.rows), &r.live),
			rng:  rand.New(rand.NewPCG(cfg.seed, uint64(i))),
			vrng: rand.New(rand.NewPCG(cfg.seed, uint64(i)|1<<32)),
			rbuf: make([]byte, max(cfg.valueSize, metadataLen)),
		}
	}
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if cfg.progress > 0 {
		pwg.Go(func() { progress(stderr, &r.live, cfg.progress, stop) })
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(w.loop)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	close(stop)
	pwg.Wait()

	res := &Result{Workload: cfg.workload, Addr: cfg.addr, Conns: cfg.conns, Pipeline: cfg.pipeline,
		ValueSize: cfg.valueSize, Seconds: secs}
	total := newOpStats()
	var chunks Chunks
	for i, name := range r.rows {
		s := newOpStats()
		for _, w := range workers {
			s.merge(w.rec.rows[i])
		}
		total.merge(s)
		res.Commands = append(res.Commands, makeRow(name, s, secs))
	}
	for _, w := range workers {
		chunks.add(w.chunks)
		res.DialErrors += w.dialErrors
	}
	res.Total = makeRow("total", total, secs)
	res.Total.Errors += res.DialErrors
	if r.convs != nil {
		res.Chunks = &chunks
	}
	res.ErrorSamples = r.live.errorSamples()
	return res, nil
}

func (w *worker) loop() {
	defer func() {
		if w.c != nil {
			w.c.close()
		}
	}()
	for w.r.ctx.Err() == nil {
		var err error
		switch w.r.cfg.workload {
		case wlSetGet:
			err = w.setget()
		default:
			err = w.conversation()
		}
		if errors.Is(err, errStopped) {
			return
		}
	}
}

// maxDialFailures in a row make a worker give up (after about 5 s), so that
// a run bounded by -requests alone ends when the server is gone.
const maxDialFailures = 50

// connect dials (again) if the connection is gone, retrying every 100 ms
// until the run is over; every failed attempt is an error.
func (w *worker) connect() error {
	for failures := 0; w.c == nil; failures++ {
		if w.r.ctx.Err() != nil || failures == maxDialFailures {
			return errStopped
		}
		c, err := openConn(w.r.cfg, w.r.cfg.workload == wlLMCacheRedis)
		if err == nil {
			w.c = c
			return nil
		}
		w.dialErrors++
		w.r.live.noteError(fmt.Errorf("cannot connect to %s: %w", w.r.cfg.addr, err))
		select {
		case <-w.r.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// openConn dials and does what the emulated client does on connect: AUTH
// with a password, and for redis-py also CLIENT SETINFO (errors ignored).
func openConn(cfg *config, setinfo bool) (*conn, error) {
	c, err := dial(cfg.addr, cfg.timeout)
	if err != nil {
		return nil, err
	}
	c.nc.SetDeadline(time.Now().Add(cfg.timeout))
	err = func() error {
		if cfg.password != "" {
			c.writeCommand("AUTH", cfg.password)
			if err := c.flush(); err != nil {
				return err
			}
			if err := c.expectOK(); err != nil {
				return fmt.Errorf("AUTH: %w", err)
			}
		}
		if setinfo {
			c.writeCommand("CLIENT", "SETINFO", "LIB-NAME", "kvresp-bench")
			if err := c.flush(); err != nil {
				return err
			}
			if _, err := c.readReply(nil); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		c.close()
		return nil, err
	}
	c.nc.SetDeadline(time.Time{})
	return c, nil
}

// failed records err against row and drops the connection if err left it
// unusable.
func (w *worker) failed(row int, err error) error {
	w.rec.fail(row, err)
	if isConnError(err) && w.c != nil {
		w.c.close()
		w.c = nil
	}
	return err
}

// Single commands, one in flight: LMCache's clients never pipeline.

func (w *worker) begin() (time.Time, error) {
	if !w.r.claim() {
		return time.Time{}, errStopped
	}
	if err := w.connect(); err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	w.c.nc.SetDeadline(now.Add(w.r.cfg.timeout))
	return now, nil
}

func (w *worker) exists(row int, key []byte) (bool, error) {
	start, err := w.begin()
	if err != nil {
		return false, err
	}
	w.c.writeArrayHeader(2)
	w.c.writeBulkString("EXISTS")
	w.c.writeBulk(key)
	n, err := w.flushThen(w.c.readInt)
	if err == nil && n != 0 && n != 1 {
		err = &unexpectedReply{want: ":0 or :1", got: ":" + strconv.FormatInt(n, 10)}
	}
	if err != nil {
		return false, w.failed(row, err)
	}
	w.rec.ok(row, start, 0, outcomeOf(n == 1))
	return n == 1, nil
}

func (w *worker) del(row int, key []byte) error {
	start, err := w.begin()
	if err != nil {
		return err
	}
	w.c.writeArrayHeader(2)
	w.c.writeBulkString("DEL")
	w.c.writeBulk(key)
	n, err := w.flushThen(w.c.readInt)
	if err != nil {
		return w.failed(row, err)
	}
	w.rec.ok(row, start, 0, outcomeOf(n > 0))
	return nil
}

func (w *worker) set(row int, key []byte, size int) error {
	start, err := w.begin()
	if err != nil {
		return err
	}
	w.c.writeArrayHeader(3)
	w.c.writeBulkString("SET")
	w.c.writeBulk(key)
	w.r.pat.writeValue(w.c, key, size)
	if _, err := w.flushThen(func() (int64, error) { return 0, w.c.expectOK() }); err != nil {
		return w.failed(row, err)
	}
	w.rec.ok(row, start, int64(size), none)
	return nil
}

// get reads key and checks its bytes against what a SET of size wrote.
func (w *worker) get(row int, key []byte, size int) (bool, error) {
	start, err := w.begin()
	if err != nil {
		return false, err
	}
	w.c.writeArrayHeader(2)
	w.c.writeBulkString("GET")
	w.c.writeBulk(key)
	var b []byte
	var ok bool
	_, err = w.flushThen(func() (int64, error) {
		var err error
		b, ok, err = w.c.readBulk(w.rbuf)
		return 0, err
	})
	if err == nil && ok {
		err = w.r.pat.verify(key, b, size, w.vrng)
	}
	if err != nil {
		return false, w.failed(row, err)
	}
	w.rec.ok(row, start, int64(len(b)), outcomeOf(ok))
	return ok, nil
}

func (w *worker) flushThen(read func() (int64, error)) (int64, error) {
	if err := w.c.flush(); err != nil {
		return 0, err
	}
	return read()
}

func outcomeOf(found bool) outcome {
	if found {
		return hit
	}
	return miss
}
