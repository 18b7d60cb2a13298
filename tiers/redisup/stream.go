package redisup

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"

	"kvresp/tiers"
)

// streamChunk is how much of a value is read before the reader hears of
// it: small enough that the client's copy follows the upstream's closely,
// large enough that the handoff costs nothing next to the copy.
const streamChunk = 256 << 10

// maxLine bounds a reply line other than a value (an error text, a length).
const maxLine = 64 << 10

// streams reads values from a single Redis node over connections of its own,
// so that a value can be handed on while it arrives (tiers.Streamer): go-redis
// reads a whole reply into a buffer of its own before anything sees it,
// which makes a read-through GET cost the upstream's transfer and then the
// client's, one after the other. Everything else goes through go-redis.
//
// It keeps at most the pool size in use at once: a read-through beyond that
// waits for a connection (within its deadline) instead of dialing the
// upstream without bound under a burst of misses.
type streams struct {
	o     *redis.Options
	mu    sync.Mutex
	idle  []*streamConn
	slots chan struct{} // one per connection in use; its capacity, the pool size, bounds idle ones too
}

func newStreams(o *redis.Options) *streams {
	n := o.PoolSize
	if n <= 0 {
		n = 16
	}
	return &streams{o: o, slots: make(chan struct{}, n)}
}

// streamConn is one connection, spoken to in RESP2.
type streamConn struct {
	nc net.Conn
	r  *bufio.Reader
}

// replyError is an error reply; it satisfies redis.Error so that refused
// sorts it as it sorts go-redis's.
type replyError string

func (e replyError) Error() string { return string(e) }
func (e replyError) RedisError()   {}

// get takes an idle connection that is still open, or dials one, once
// fewer than the pool size are in use; the caller gives it back with release
// or drop. An idle connection the server closed (a restart, its idle
// timeout, CLIENT KILL) would fail the request on its first read, and enough
// of them in a row would open the circuit breaker while the server is up.
func (s *streams) get(ctx context.Context) (*streamConn, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		// A limit of this node's, not a failure of the upstream's: it must
		// not open the breaker.
		return nil, fmt.Errorf("redisup: all %d streaming connections in use: %w: %w", cap(s.slots), tiers.ErrRefused, ctx.Err())
	}
	for {
		s.mu.Lock()
		n := len(s.idle)
		if n == 0 {
			s.mu.Unlock()
			c, err := s.dial(ctx)
			if err != nil {
				<-s.slots
			}
			return c, err
		}
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		if c.open() {
			return c, nil
		}
		_ = c.nc.Close()
	}
}

// open reports whether an idle connection is usable: nothing to read (the
// server sends nothing unasked), neither end of file nor stray bytes.
func (c *streamConn) open() bool {
	if c.r.Buffered() > 0 {
		return false
	}
	nc := c.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	return socketIdle(nc)
}

// release returns c to the pool once a request is done with it, unless the
// request's context fired: its AfterFunc may then set a deadline in the
// past at any moment, so c is closed instead.
func (s *streams) release(c *streamConn, stop func() bool) {
	if stop() {
		s.put(c)
	} else {
		_ = c.nc.Close()
	}
	<-s.slots
}

// drop closes c, which a request leaves out of step (a failure, a value not
// read), and gives its place back.
func (s *streams) drop(c *streamConn, stop func() bool) {
	stop()
	_ = c.nc.Close()
	<-s.slots
}

// put keeps a connection whose last reply was read whole.
func (s *streams) put(c *streamConn) {
	_ = c.nc.SetDeadline(time.Time{})
	s.mu.Lock()
	if len(s.idle) < cap(s.slots) {
		s.idle = append(s.idle, c)
		c = nil
	}
	s.mu.Unlock()
	if c != nil {
		_ = c.nc.Close()
	}
}

func (s *streams) close() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		_ = c.nc.Close()
	}
}

// dial connects with go-redis's own dialer (TLS included) and
// authenticates as go-redis would for the same options.
func (s *streams) dial(ctx context.Context) (*streamConn, error) {
	nc, err := s.o.Dialer(ctx, s.o.Network, s.o.Addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c := &streamConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	var b []byte
	setup := 0
	switch {
	case s.o.Password != "" && s.o.Username != "":
		b = appendCommand(b, "AUTH", s.o.Username, s.o.Password)
		setup++
	case s.o.Password != "":
		b = appendCommand(b, "AUTH", s.o.Password)
		setup++
	}
	if s.o.DB != 0 {
		b = appendCommand(b, "SELECT", strconv.Itoa(s.o.DB))
		setup++
	}
	if setup > 0 {
		err := c.write(b)
		for i := 0; err == nil && i < setup; i++ {
			err = c.expect("+OK")
		}
		if err != nil {
			_ = nc.Close()
			// A refused AUTH or SELECT says the upstream is unusable as
			// configured: not a refusal of this one request.
			return nil, fmt.Errorf("redisup: connection setup: %s", err.Error())
		}
	}
	return c, nil
}

func appendCommand(b []byte, args ...string) []byte {
	b = redcon.AppendArray(b, len(args))
	for _, a := range args {
		b = redcon.AppendBulkString(b, a)
	}
	return b
}

func (c *streamConn) write(b []byte) error {
	_, err := c.nc.Write(b)
	return err
}

// line reads one reply line without its CRLF.
func (c *streamConn) line() (string, error) {
	b, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(b) > maxLine {
		return "", errors.New("redisup: reply line too long")
	}
	if err != nil {
		return "", err
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", errors.New("redisup: reply line without CRLF")
	}
	return string(b[:len(b)-2]), nil
}

// expect reads a line that must be want; an error reply becomes a
// replyError, anything else a protocol error.
func (c *streamConn) expect(want string) error {
	l, err := c.line()
	switch {
	case err != nil:
		return err
	case l == want:
		return nil
	case len(l) > 0 && l[0] == '-':
		return replyError(l[1:])
	}
	return fmt.Errorf("redisup: reply %q, want %q", trim(l), want)
}

// number reads a line of the form <kind><integer>; a null (-1) is reported
// as such.
func (c *streamConn) number(kind byte) (int64, error) {
	l, err := c.line()
	if err != nil {
		return 0, err
	}
	if len(l) > 0 && l[0] == '-' {
		return 0, replyError(l[1:])
	}
	if len(l) < 2 || l[0] != kind {
		return 0, fmt.Errorf("redisup: reply %q, want %c<integer>", trim(l), kind)
	}
	n, err := strconv.ParseInt(l[1:], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisup: reply %q: %w", trim(l), err)
	}
	return n, nil
}

func trim(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// readValueHeader reads the replies to MULTI, PTTL, GET, EXEC up to the
// value's length: the key's PTTL and the value's length (-1 for none).
func (c *streamConn) readValueHeader() (pttl, n int64, err error) {
	for _, want := range []string{"+OK", "+QUEUED", "+QUEUED"} {
		if err := c.expect(want); err != nil {
			return 0, 0, err
		}
	}
	if k, err := c.number('*'); err != nil || k != 2 {
		if err == nil {
			err = fmt.Errorf("redisup: EXEC answered %d replies, want 2", k)
		}
		return 0, 0, err
	}
	if pttl, err = c.number(':'); err != nil {
		return 0, 0, err
	}
	if n, err = c.number('$'); err != nil {
		return 0, 0, err
	}
	if n < -1 {
		return 0, 0, fmt.Errorf("redisup: value length %d", n)
	}
	return pttl, n, nil
}

// readValue reads the n bytes of a value into b, telling f as they come,
// then the CRLF after it.
func (c *streamConn) readValue(b []byte, f *tiers.Fill) error {
	for off := 0; off < len(b); {
		end := min(off+streamChunk, len(b))
		if _, err := io.ReadFull(c.r, b[off:end]); err != nil {
			return err
		}
		off = end
		f.Progress(off)
	}
	var crlf [2]byte
	if _, err := io.ReadFull(c.r, crlf[:]); err != nil {
		return err
	}
	if crlf != [2]byte{'\r', '\n'} {
		return errors.New("redisup: value not followed by CRLF")
	}
	return nil
}

// GetStream implements tiers.Streamer for a single node (Open makes the
// others' a plain Get): MULTI, PTTL, GET, EXEC in one write, so that the
// expiry belongs to the very value read, and the value is read straight
// into the slab buffer in chunks, each handed on as it lands.
func (u *Upstream) GetStream(ctx context.Context, key string, alloc tiers.Alloc) (tiers.Item, *tiers.Fill, bool, error) {
	if u.streams == nil {
		it, ok, err := u.Get(ctx, key, alloc)
		return it, nil, ok, err
	}
	c, err := u.streams.get(ctx)
	if err != nil {
		return tiers.Item{}, nil, false, fmt.Errorf("redisup: GET: %w", err)
	}
	// The deadline bounds the whole transfer; a cancelled ctx ends it too.
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Now()) })
	fail := func(err error) (tiers.Item, *tiers.Fill, bool, error) {
		u.streams.drop(c, stop)
		return tiers.Item{}, nil, false, failed("GET", err)
	}
	start := time.Now()
	if err := c.write(appendCommand(appendCommand(appendCommand(appendCommand(nil, "MULTI"), "PTTL", key), "GET", key), "EXEC")); err != nil {
		return fail(err)
	}
	pttl, n, err := c.readValueHeader()
	if err != nil {
		return fail(err)
	}
	if n < 0 {
		u.streams.release(c, stop)
		return tiers.Item{}, nil, false, nil
	}
	buf, err := alloc(int(n))
	if err != nil {
		u.streams.drop(c, stop) // the value is not read: the connection is out of step
		return tiers.Item{}, nil, false, allocFailed(int(n), err)
	}
	it := tiers.Item{Buf: buf}
	if pttl >= 0 {
		it.ExpireAt = start.UnixMilli() + pttl
	}
	f := tiers.NewFill()
	go func() {
		if err := c.readValue(buf.Bytes(), f); err != nil {
			u.streams.drop(c, stop)
			f.Finish(fmt.Errorf("redisup: GET: %w", err))
			return
		}
		u.streams.release(c, stop)
		f.Finish(nil)
	}()
	return it, f, true, nil
}
