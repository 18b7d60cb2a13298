package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Limits on replies, Redis's own (proto-max-bulk-len, the 64 KiB line
// limit): a reply past them is a protocol error, so that a broken server
// cannot make the client allocate without bound.
const (
	maxBulkLen  = 512 << 20
	maxArrayLen = 1 << 20
	maxDepth    = 16
	readBufSize = 64 << 10
)

// errProtocol marks a reply that is not RESP2; the connection is out of
// sync and must be closed.
var errProtocol = errors.New("bench: protocol error")

// serverError is an error reply ("-ERR ..."); the connection stays in sync.
type serverError string

func (e serverError) Error() string { return "server replied -" + string(e) }

// unexpectedReply is a well-formed reply of the wrong kind; the stream is
// still in sync (though LMCache's resp:// client would not be).
type unexpectedReply struct{ want, got string }

func (e *unexpectedReply) Error() string { return "want " + e.want + ", got " + e.got }

func protoErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// reply is one RESP2 reply. str aliases the caller's buffer for bulk
// strings read with a destination, so it is valid until the next read.
type reply struct {
	kind  byte // '+', '-', ':', '$', '*'
	null  bool // $-1 or *-1
	n     int64
	str   []byte
	elems []reply
}

// segment is a piece of the pending output: a range of conn.wbuf, or a
// caller's buffer written in place (a value, never copied).
type segment struct {
	off, end int
	ext      []byte
}

// conn is a RESP2 client connection. Commands are queued with the write*
// methods and sent by flush as one writev (net.Buffers), so a SET of a
// 32 MiB value costs one system call and no copy of the value. The write
// side and the read side may be used by two goroutines, one each.
type conn struct {
	nc net.Conn
	br *bufio.Reader

	wbuf []byte // small parts of queued commands
	segs []segment
	mark int // start of the wbuf run not yet in segs
	bufs net.Buffers
}

func newConn(nc net.Conn) *conn {
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, readBufSize), wbuf: make([]byte, 0, 4096)}
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return newConn(nc), nil
}

func (c *conn) close() error { return c.nc.Close() }

func (c *conn) writeArrayHeader(n int) {
	c.wbuf = append(c.wbuf, '*')
	c.wbuf = strconv.AppendInt(c.wbuf, int64(n), 10)
	c.wbuf = append(c.wbuf, '\r', '\n')
}

func (c *conn) writeBulkHeader(n int) {
	c.wbuf = append(c.wbuf, '$')
	c.wbuf = strconv.AppendInt(c.wbuf, int64(n), 10)
	c.wbuf = append(c.wbuf, '\r', '\n')
}

// writeBulk queues a small argument, copied.
func (c *conn) writeBulk(b []byte) {
	c.writeBulkHeader(len(b))
	c.wbuf = append(c.wbuf, b...)
	c.wbuf = append(c.wbuf, '\r', '\n')
}

func (c *conn) writeBulkString(s string) {
	c.writeBulkHeader(len(s))
	c.wbuf = append(c.wbuf, s...)
	c.wbuf = append(c.wbuf, '\r', '\n')
}

// writeExt queues b without copying it; b must not change until flush
// returns.
func (c *conn) writeExt(b []byte) {
	if len(b) == 0 {
		return
	}
	if c.mark < len(c.wbuf) {
		c.segs = append(c.segs, segment{off: c.mark, end: len(c.wbuf)})
		c.mark = len(c.wbuf)
	}
	c.segs = append(c.segs, segment{ext: b})
}

// writeCommand queues a command of small arguments.
func (c *conn) writeCommand(args ...string) {
	c.writeArrayHeader(len(args))
	for _, a := range args {
		c.writeBulkString(a)
	}
}

// pending reports whether commands are queued.
func (c *conn) pending() bool { return len(c.wbuf) > 0 || len(c.segs) > 0 }

// flush sends everything queued.
func (c *conn) flush() error {
	if c.mark < len(c.wbuf) {
		c.segs = append(c.segs, segment{off: c.mark, end: len(c.wbuf)})
	}
	bufs := c.bufs[:0]
	for _, s := range c.segs {
		if s.ext != nil {
			bufs = append(bufs, s.ext)
		} else {
			bufs = append(bufs, c.wbuf[s.off:s.end])
		}
	}
	c.bufs = bufs // keep the backing array; WriteTo consumes its copy
	_, err := bufs.WriteTo(c.nc)
	clear(c.bufs) // drop references to values
	c.wbuf, c.segs, c.mark = c.wbuf[:0], c.segs[:0], 0
	return err
}

// readLine returns the next line without its CRLF; it aliases br's buffer.
func (c *conn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, protoErrorf("line longer than %d bytes", readBufSize)
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, protoErrorf("line not ended by CRLF: %q", line)
	}
	return line[:len(line)-2], nil
}

// parseInt parses a canonical decimal integer, the only form Redis
// writes: no sign but '-', no leading zeros, no "-0". Being strict here
// makes a successful parse prove that the reply had exactly the expected
// bytes (LMCache's resp:// client compares bytes, not values).
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || len(d) > 18 || (d[0] == '0' && (len(d) > 1 || neg)) {
		return 0, false
	}
	var n int64
	for _, ch := range d {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// readReply reads one reply. A bulk string goes into dst when it fits
// (io.ReadFull straight from the socket for large values), else into a
// new slice grown as bytes arrive.
func (c *conn) readReply(dst []byte) (reply, error) {
	return c.readDepth(dst, 0)
}

func (c *conn) readDepth(dst []byte, depth int) (reply, error) {
	line, err := c.readLine()
	if err != nil {
		return reply{}, err
	}
	if len(line) == 0 {
		return reply{}, protoErrorf("empty line")
	}
	r := reply{kind: line[0]}
	switch r.kind {
	case '+', '-':
		r.str = bytes.Clone(line[1:])
		return r, nil
	case ':':
		n, ok := parseInt(line[1:])
		if !ok {
			return reply{}, protoErrorf("bad integer %q", line)
		}
		r.n = n
		return r, nil
	case '$':
		n, ok := parseInt(line[1:])
		if !ok || n < -1 || n > maxBulkLen {
			return reply{}, protoErrorf("bad bulk length %q", line)
		}
		r.n = n
		if n == -1 {
			r.null = true
			return r, nil
		}
		if r.str, err = c.readBulkBody(dst, int(n)); err != nil {
			return reply{}, err
		}
		return r, nil
	case '*':
		n, ok := parseInt(line[1:])
		if !ok || n < -1 || n > maxArrayLen {
			return reply{}, protoErrorf("bad array length %q", line)
		}
		r.n = n
		if n == -1 {
			r.null = true
			return r, nil
		}
		if depth >= maxDepth {
			return reply{}, protoErrorf("arrays nested deeper than %d", maxDepth)
		}
		r.elems = make([]reply, 0, min(n, 64))
		for range n {
			e, err := c.readDepth(nil, depth+1)
			if err != nil {
				return reply{}, err
			}
			r.elems = append(r.elems, e)
		}
		return r, nil
	}
	return reply{}, protoErrorf("unknown reply type %q", line[0])
}

// readBulkBody reads n bytes and the CRLF after them.
func (c *conn) readBulkBody(dst []byte, n int) ([]byte, error) {
	var b []byte
	if n <= cap(dst) {
		b = dst[:n]
		if _, err := io.ReadFull(c.br, b); err != nil {
			return nil, unexpectedEOF(err)
		}
	} else {
		// Grow as bytes arrive: a lying length costs no more memory than
		// the bytes actually sent.
		const step = 1 << 20
		b = make([]byte, 0, min(n, step))
		for len(b) < n {
			k := min(n-len(b), step)
			b = append(b, make([]byte, k)...)
			if _, err := io.ReadFull(c.br, b[len(b)-k:]); err != nil {
				return nil, unexpectedEOF(err)
			}
		}
	}
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		return nil, unexpectedEOF(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return nil, protoErrorf("bulk string of %d bytes not followed by CRLF", n)
	}
	return b, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// expectOK reads a reply that must be exactly +OK\r\n.
func (c *conn) expectOK() error {
	r, err := c.readReply(nil)
	if err != nil {
		return err
	}
	if r.kind == '-' {
		return serverError(r.str)
	}
	if r.kind != '+' || string(r.str) != "OK" {
		return &unexpectedReply{want: "+OK", got: r.describe()}
	}
	return nil
}

// readInt reads an integer reply.
func (c *conn) readInt() (int64, error) {
	r, err := c.readReply(nil)
	if err != nil {
		return 0, err
	}
	if r.kind == '-' {
		return 0, serverError(r.str)
	}
	if r.kind != ':' {
		return 0, &unexpectedReply{want: "an integer", got: r.describe()}
	}
	return r.n, nil
}

// readBulk reads a bulk string reply into dst; ok is false for $-1.
func (c *conn) readBulk(dst []byte) (b []byte, ok bool, err error) {
	r, err := c.readReply(dst)
	if err != nil {
		return nil, false, err
	}
	if r.kind == '-' {
		return nil, false, serverError(r.str)
	}
	if r.kind != '$' {
		return nil, false, &unexpectedReply{want: "a bulk string", got: r.describe()}
	}
	return r.str, !r.null, nil
}

// describe names a reply for an error message without dumping a value.
func (r reply) describe() string {
	switch {
	case r.kind == '+' || r.kind == '-':
		s := r.str
		if len(s) > 64 {
			s = s[:64]
		}
		return fmt.Sprintf("%c%q", r.kind, s)
	case r.kind == ':':
		return fmt.Sprintf(":%d", r.n)
	case r.null:
		return fmt.Sprintf("%c-1", r.kind)
	case r.kind == '$':
		return fmt.Sprintf("a bulk string of %d bytes", r.n)
	default:
		return fmt.Sprintf("an array of %d", r.n)
	}
}

// appendReply encodes r as RESP2; parsing its output gives r back.
func appendReply(b []byte, r reply) []byte {
	b = append(b, r.kind)
	switch {
	case r.kind == '+' || r.kind == '-':
		b = append(b, r.str...)
	case r.null:
		b = append(b, '-', '1')
	case r.kind == ':':
		b = strconv.AppendInt(b, r.n, 10)
	case r.kind == '$':
		b = strconv.AppendInt(b, int64(len(r.str)), 10)
		b = append(b, '\r', '\n')
		b = append(b, r.str...)
	case r.kind == '*':
		b = strconv.AppendInt(b, int64(len(r.elems)), 10)
		b = append(b, '\r', '\n')
		for _, e := range r.elems {
			b = appendReply(b, e)
		}
		return b
	}
	return append(b, '\r', '\n')
}

// isConnError reports whether err leaves the connection unusable (I/O or
// protocol failure) rather than being one bad reply on a healthy stream.
func isConnError(err error) bool {
	var se serverError
	if errors.As(err, &se) {
		return false
	}
	var ve *verifyError
	if errors.As(err, &ve) {
		return false
	}
	var ue *unexpectedReply
	return !errors.As(err, &ue)
}
