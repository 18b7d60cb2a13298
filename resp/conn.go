package resp

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one client connection. Its goroutine reads a request, runs it and
// gathers the reply, and writes replies out once the pipeline it has read is
// done (or enough is gathered); one command runs at a time per connection.
type conn struct {
	s     *Server
	nc    net.Conn
	id    int64
	rd    *reader
	wr    *writer
	start time.Time

	authed bool

	// Fields CLIENT LIST and CLIENT KILL read from other goroutines.
	mu       sync.Mutex
	name     string
	libName  string
	libVer   string
	lastCmd  atomic.Pointer[command]
	lastUsed atomic.Int64 // Unix nanoseconds
	proto    int          // a copy of wr.proto for CLIENT LIST
	killed   atomic.Bool

	closeAfter bool // QUIT, or a fatal error answered
	failed     bool // the connection broke mid-reply: close without writing

	// charged is what the connection's own buffers are charged against
	// maxmemory, so that query and reply buffers count like values do.
	charged int64
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:     s,
		nc:    nc,
		id:    s.nextID.Add(1),
		rd:    newReader(nc, s.arena, &s.stats.netIn),
		wr:    newWriter(nc, &s.stats.netOut, s.writeStall),
		start: time.Now(),
		proto: 2,
	}
	c.lastUsed.Store(c.start.UnixNano())
	c.authed = *s.requirepass.Load() == ""
	c.rd.cr.idle = &s.idleTimeout
	return c
}

// kill closes the connection from another goroutine (CLIENT KILL, Close);
// the connection's own goroutine fails its next read or write and ends.
func (c *conn) kill() {
	c.killed.Store(true)
	_ = c.nc.Close()
}

// setProto switches the replies to RESP2 or RESP3.
func (c *conn) setProto(p int) {
	c.wr.proto = p
	c.mu.Lock()
	c.proto = p
	c.mu.Unlock()
}

func (c *conn) limits() limits {
	return limits{
		maxBulk:  c.s.maxBulk.Load(),
		maxQuery: c.s.maxQuery.Load(),
		bigBulk:  c.s.bigBulk,
		authed:   c.authed,
	}
}

func (c *conn) serve() {
	defer func() {
		c.wr.discard()
		c.rd.req.release()
		_ = c.nc.Close()
		c.s.arena.Unreserve(c.charged)
	}()
	if err := c.account(); err != nil {
		c.wr.error(oomReply(err))
		_ = c.wr.flush()
		return
	}
	for !c.killed.Load() {
		if c.rd.buffered() == 0 {
			if err := c.wr.flush(); err != nil {
				c.logClose(err)
				return
			}
		}
		req, err := c.rd.next(c.limits())
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				c.s.stats.protoErrors.Add(1)
				c.wr.error("ERR " + pe.Error())
				_ = c.wr.flush()
			}
			c.logClose(err)
			return
		}
		if req == nil {
			continue
		}
		c.dispatch(req)
		c.rd.req.release()
		if err := c.account(); err != nil {
			// The client's buffers would push kvresp past maxmemory
			// (Redis's known failure): drop the client, keep the memory.
			c.s.log.Warn("closing client: its buffers do not fit in maxmemory", "id", c.id, "addr", c.nc.RemoteAddr().String(), "err", err)
			return
		}
		if c.closeAfter {
			if !c.failed {
				_ = c.wr.flush()
			}
			return
		}
		if err := c.flushIfFull(); err != nil {
			c.logClose(err)
			return
		}
	}
}

// fail ends the connection from inside a command whose reply could not be
// written; the serve loop closes it after the command.
func (c *conn) fail(err error) {
	c.logClose(err)
	c.wr.discard()
	c.closeAfter = true
	c.failed = true
}

// errOutputLimit closes a client whose pending replies exceed
// client-output-buffer-limit, as Redis does.
var errOutputLimit = errors.New("resp: client reached the output buffer limit")

// flushIfFull writes out what is gathered once it reaches flushAt, or
// client-output-buffer-limit when that is lower. It is called after every
// command and, by commands that reply with many values, between values, so
// what a client can make kvresp hold stays near that bound plus one value.
// Only what accumulated since the last check can pass the limit, that is one
// reply larger than it: that closes the client, as Redis does.
func (c *conn) flushIfFull() error {
	g := int64(c.wr.gathered())
	lim := c.s.outputLimit.Load()
	if lim > 0 && g > lim {
		c.wr.discard()
		return errOutputLimit
	}
	if c.wr.full() || (lim > 0 && g >= lim) {
		return c.wr.flush()
	}
	return nil
}

// account charges the growth (or refunds the shrinking) of the
// connection's buffers against the arena's limit.
func (c *conn) account() error {
	n := int64(readBufferSize + cap(c.rd.small) + c.wr.bufferBytes())
	switch d := n - c.charged; {
	case d > 0:
		if err := c.s.arena.Reserve(d); err != nil {
			return err
		}
	case d < 0:
		c.s.arena.Unreserve(-d)
	}
	c.charged = n
	return nil
}

func (c *conn) logClose(err error) {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.killed.Load():
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.s.log.Debug("closing idle client", "id", c.id, "addr", c.nc.RemoteAddr().String())
	default:
		c.s.log.Debug("closing client", "id", c.id, "addr", c.nc.RemoteAddr().String(), "err", err)
	}
}

// dispatch looks the command up, checks arity and authentication, and runs
// it. Replies for errors follow Redis's texts, which clients match on.
func (c *conn) dispatch(req *request) {
	args := req.args
	cmd := lookupBytes(args[0])
	c.s.stats.commands.Add(1)
	start := time.Now()
	c.lastUsed.Store(start.UnixNano())
	if cmd == nil {
		c.wr.error(unknownCommand(args))
		c.s.m.unknown.Inc()
		return
	}
	c.lastCmd.Store(cmd)
	if !cmd.arityOK(len(args)) {
		c.wr.error("ERR wrong number of arguments for '" + cmd.name + "' command")
		return
	}
	if !c.authed && cmd.flags&flagNoAuth == 0 {
		c.wr.error("NOAUTH Authentication required.")
		return
	}
	if req.allocErr != nil {
		c.wr.error(oomReply(req.allocErr))
		return
	}
	cmd.run(c, req)
	c.s.m.observe(cmd, time.Since(start))
}

// unknownCommand is Redis 7's reply to an unknown command, which quotes the
// first arguments (at most 128 bytes in all).
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(sanitize(string(args[0]), 128))
	b.WriteString("', with args beginning with: ")
	left := 128
	for _, a := range args[1:] {
		if left <= 0 {
			break
		}
		s := sanitize(string(a), left)
		left -= len(s)
		b.WriteString("'" + s + "' ")
	}
	return b.String()
}

// sanitize shortens s to n bytes and replaces characters that would break
// an error line.
func sanitize(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
