package resp

import (
	"bufio"
	"errors"
	"io"
	"math"
	"net"
	"sync/atomic"
	"time"

	"kvresp/internal/sdsargs"
	"kvresp/slab"
)

// Redis's fixed limits on request framing (networking.c): the longest inline
// request and the longest "*<count>" or "$<len>" line, and the limits that
// apply before a client has authenticated, so that an unauthenticated peer
// cannot make the server buffer anything large.
const (
	maxInlineLen       = 64 << 10
	maxCountLineLen    = 64 << 10
	unauthMaxArgs      = 10
	unauthMaxBulkLen   = 16 << 10
	maxMultibulkLength = 1<<31 - 1 // INT_MAX, as Redis checks it
	readBufferSize     = 64 << 10
)

// ProtocolError is a framing error. It is answered with "-ERR Protocol
// error: ..." and the connection is closed.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

func protoErr(msg string) error { return &ProtocolError{Msg: msg} }

// errQueryLimit closes a client whose one command is larger than the query
// buffer limit. Redis closes such clients without an answer.
var errQueryLimit = errors.New("resp: client reached the query buffer limit")

// limits are the per-read limits, taken from the server's live settings.
type limits struct {
	maxBulk  int64 // proto-max-bulk-len
	maxQuery int64 // client-query-buffer-limit, for one command's bytes
	bigBulk  int   // bulks at least this long go to slab buffers
	authed   bool  // false applies the unauthenticated limits
}

// request is one parsed command. args alias the reader's buffer or, for big
// bulks, a slab buffer held in bufs at the same index; both stay valid until
// the next read. A bulk that could not be buffered (no memory for it) is
// consumed from the stream and reported in allocErr, so the command is
// answered with an error and the connection goes on.
type request struct {
	args     [][]byte
	bufs     []*slab.Buf
	allocErr error
	inline   bool
}

// release drops the request's references to slab buffers.
func (r *request) release() {
	for i, b := range r.bufs {
		if b != nil {
			b.Release()
			r.bufs[i] = nil
		}
	}
	r.bufs = r.bufs[:0]
	r.args = r.args[:0]
	r.allocErr = nil
}

// reader parses requests from a connection: RESP multibulk and inline
// requests, as redis-server accepts them. Small arguments are copied into one
// reusable buffer; a bulk of bigBulk bytes or more is read straight from the
// socket into a slab buffer (bufio hands large reads to the socket directly),
// so a 32 MiB value is copied once, by the kernel.
type reader struct {
	br    *bufio.Reader
	arena *slab.Arena
	small []byte
	offs  []int
	req   request
	cr    *countingReader
}

func newReader(rd io.Reader, arena *slab.Arena, total *atomic.Int64) *reader {
	cr := &countingReader{r: rd, total: total}
	if nc, ok := rd.(net.Conn); ok {
		cr.conn = nc
	}
	return &reader{br: bufio.NewReaderSize(cr, readBufferSize), arena: arena, cr: cr}
}

// countingReader counts bytes read from the socket into the server's total
// and, when the server has an idle timeout, renews the read deadline before
// each read, so that a client is idle only when it sends nothing (a slow
// upload of a large value is not idle).
type countingReader struct {
	r     io.Reader
	total *atomic.Int64
	idle  *atomic.Int64 // nanoseconds, 0 = no timeout; nil = no deadlines
	conn  interface{ SetReadDeadline(time.Time) error }
	// deadline is whether a read deadline is set on conn.
	deadline bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.idle != nil {
		if d := time.Duration(c.idle.Load()); d > 0 {
			_ = c.conn.SetReadDeadline(time.Now().Add(d))
			c.deadline = true
		} else if c.deadline {
			// CONFIG SET timeout 0: clear the last deadline, once.
			_ = c.conn.SetReadDeadline(time.Time{})
			c.deadline = false
		}
	}
	n, err := c.r.Read(p)
	c.total.Add(int64(n))
	return n, err
}

// buffered reports whether another request may be parsed without blocking.
func (r *reader) buffered() int { return r.br.Buffered() }

// line reads one line ending in \n, without the \r\n, refusing lines longer
// than max with msg. The slice is valid until the next read.
func (r *reader) line(max int, tooLong string) ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || (err == nil && len(b) > max+2) {
		return nil, protoErr(tooLong)
	}
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b, nil
}

// next reads one request. It returns (nil, nil) for an empty request
// (a blank inline line or "*0"/"*-1"), which is skipped without an answer.
func (r *reader) next(lim limits) (*request, error) {
	r.req.release()
	if cap(r.small) > 1<<20 {
		// Let one huge command's argument buffer go.
		r.small = nil
	}
	r.small = r.small[:0]
	r.offs = r.offs[:0]
	c, err := r.br.Peek(1)
	if err != nil {
		return nil, err
	}
	if c[0] != '*' {
		return r.inline()
	}
	ln, err := r.line(maxCountLineLen, "too big mbulk count string")
	if err != nil {
		return nil, err
	}
	n, ok := parseInt(ln[1:])
	if !ok || n > maxMultibulkLength {
		return nil, protoErr("invalid multibulk length")
	}
	if !lim.authed && n > unauthMaxArgs {
		return nil, protoErr("unauthenticated multibulk length")
	}
	if n <= 0 {
		return nil, nil
	}
	req := &r.req
	var total int64
	for i := int64(0); i < n; i++ {
		hd, err := r.line(maxCountLineLen, "too big bulk count string")
		if err != nil {
			return nil, err
		}
		if len(hd) == 0 || hd[0] != '$' {
			got := byte(' ')
			if len(hd) > 0 {
				got = hd[0]
			}
			return nil, protoErr("expected '$', got '" + string(got) + "'")
		}
		blen, ok := parseInt(hd[1:])
		if !ok || blen < 0 || blen > lim.maxBulk {
			return nil, protoErr("invalid bulk length")
		}
		if !lim.authed && blen > unauthMaxBulkLen {
			return nil, protoErr("unauthenticated bulk length")
		}
		total += blen
		if lim.maxQuery > 0 && total > lim.maxQuery {
			return nil, errQueryLimit
		}
		if blen >= int64(lim.bigBulk) && lim.bigBulk > 0 {
			if err := r.bigBulk(int(blen)); err != nil {
				return nil, err
			}
		} else {
			if err := r.smallBulk(int(blen)); err != nil {
				return nil, err
			}
		}
	}
	r.finish()
	return req, nil
}

// smallBulk appends a bulk and its CRLF to the small buffer.
func (r *reader) smallBulk(n int) error {
	start := len(r.small)
	r.small = grow(r.small, n+2)
	if _, err := io.ReadFull(r.br, r.small[start:start+n+2]); err != nil {
		return unexpected(err)
	}
	if r.small[start+n] != '\r' || r.small[start+n+1] != '\n' {
		return protoErr("invalid bulk format")
	}
	r.small = r.small[:start+n]
	r.offs = append(r.offs, start, start+n)
	r.req.bufs = append(r.req.bufs, nil)
	return nil
}

// bigBulk reads a bulk into its own slab buffer. When the arena cannot give
// one, the bulk is read and thrown away so the connection stays in step.
func (r *reader) bigBulk(n int) error {
	buf, err := r.arena.AllocValue(n)
	if err != nil {
		if r.req.allocErr == nil {
			r.req.allocErr = err
		}
		if _, err := r.br.Discard(n); err != nil {
			return unexpected(err)
		}
		r.offs = append(r.offs, -1, -1)
		r.req.bufs = append(r.req.bufs, nil)
		return r.crlf()
	}
	r.req.bufs = append(r.req.bufs, buf)
	r.offs = append(r.offs, -1, -1)
	if _, err := io.ReadFull(r.br, buf.Bytes()); err != nil {
		return unexpected(err)
	}
	return r.crlf()
}

func (r *reader) crlf() error {
	var b [2]byte
	if _, err := io.ReadFull(r.br, b[:]); err != nil {
		return unexpected(err)
	}
	if b != [2]byte{'\r', '\n'} {
		return protoErr("invalid bulk format")
	}
	return nil
}

// finish turns offsets into argument slices now that the small buffer will
// not move again.
func (r *reader) finish() {
	req := &r.req
	for i := 0; i < len(r.offs); i += 2 {
		if b := req.bufs[i/2]; b != nil {
			req.args = append(req.args, b.Bytes())
		} else if r.offs[i] < 0 {
			req.args = append(req.args, nil)
		} else {
			req.args = append(req.args, r.small[r.offs[i]:r.offs[i+1]:r.offs[i+1]])
		}
	}
}

// inline parses a request typed by a person (telnet, redis-cli's inline
// mode): space-separated arguments with Redis's quoting rules.
func (r *reader) inline() (*request, error) {
	ln, err := r.line(maxInlineLen, "too big inline request")
	if err != nil {
		return nil, err
	}
	args, err := sdsargs.Split(string(ln))
	if err != nil {
		return nil, protoErr("unbalanced quotes in request")
	}
	if len(args) == 0 {
		return nil, nil
	}
	for _, a := range args {
		r.req.args = append(r.req.args, []byte(a))
		r.req.bufs = append(r.req.bufs, nil)
	}
	r.req.inline = true
	return &r.req, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// parseInt parses a decimal integer strictly, as Redis's string2ll does:
// an optional minus, digits, no leading zeros, no overflow.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}
