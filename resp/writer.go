package resp

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"kvresp/slab"
	"kvresp/tiers"
)

// zeroCopyMin is the smallest value sent straight from its slab buffer; a
// smaller one is cheaper to copy into the reply buffer than to give its own
// iovec.
const zeroCopyMin = 16 << 10

// flushAt is how many reply bytes (copied or pinned) a connection gathers
// from a pipeline before it writes them out. It bounds what one client can
// pin however many GETs it pipelines without reading.
const flushAt = 8 << 20

// writer builds replies in RESP2 or RESP3 and sends them with one writev:
// small replies are appended to a byte buffer (with redcon's encoders), a
// large value is sent from its slab buffer, which stays pinned until it has
// left. Nothing a client has not read is ever copied.
type writer struct {
	conn    net.Conn
	proto   int // 2 or 3
	cur     []byte
	segs    net.Buffers
	pins    []*slab.Buf
	pending int
	stall   time.Duration // a write that makes no progress this long fails
	written *atomic.Int64 // the server's total_net_output_bytes
	spare   [][]byte
}

func newWriter(c net.Conn, written *atomic.Int64, stall time.Duration) *writer {
	return &writer{conn: c, proto: 2, cur: make([]byte, 0, 4096), written: written, stall: stall}
}

// full reports whether enough is gathered to write out now: pinned values
// and copied reply bytes together.
func (w *writer) full() bool { return w.pending+len(w.cur) >= flushAt }

// gathered is how many reply bytes wait to be written.
func (w *writer) gathered() int { return w.pending + len(w.cur) }

func (w *writer) simple(s string) { w.cur = redcon.AppendString(w.cur, s) }
func (w *writer) ok()             { w.cur = append(w.cur, "+OK\r\n"...) }

// error writes an error reply; msg starts with its code ("ERR ...").
func (w *writer) error(msg string) { w.cur = redcon.AppendError(w.cur, msg) }

func (w *writer) int(n int64) { w.cur = redcon.AppendInt(w.cur, n) }

func (w *writer) bulkString(s string) { w.cur = redcon.AppendBulkString(w.cur, s) }

func (w *writer) bulk(b []byte) { w.cur = redcon.AppendBulk(w.cur, b) }

// bulkBuf writes buf as a bulk string, sending large ones from the buffer
// itself. The writer takes over the caller's reference.
func (w *writer) bulkBuf(buf *slab.Buf) {
	b := buf.Bytes()
	if len(b) < zeroCopyMin {
		w.bulk(b)
		buf.Release()
		return
	}
	w.cur = append(w.cur, '$')
	w.cur = strconv.AppendInt(w.cur, int64(len(b)), 10)
	w.cur = append(w.cur, '\r', '\n')
	w.segs = append(w.segs, w.cur, b)
	w.pins = append(w.pins, buf)
	w.pending += len(w.cur) + len(b)
	w.cur = w.newSeg()
	w.cur = append(w.cur, '\r', '\n')
}

// errShortFill is a transfer that ended without error short of its value.
var errShortFill = errors.New("resp: the value being read through ended short")

// bulkStream writes buf as a bulk string while the upstream is still filling
// it (cut-through): what is gathered goes out first, then the header and the
// value as it arrives, and the final CRLF only once the transfer has ended
// well, so that a client can never take part of a value for all of it. A
// transfer that fails after its header went out returns its error: the
// connection must then be closed. A small value is sent only once whole, so
// its failed transfer is a miss, as a failed upstream read is elsewhere. The writer takes over the caller's reference (the store keeps its
// own until the transfer is over, so the upstream never fills a buffer
// already given back).
func (w *writer) bulkStream(buf *slab.Buf, f *tiers.Fill) error {
	b := buf.Bytes()
	if len(b) < zeroCopyMin {
		// Too small to gain anything from cut-through.
		<-f.Done()
		if f.Err() != nil {
			buf.Release()
			w.null()
			return nil
		}
		w.bulkBuf(buf)
		return nil
	}
	defer buf.Release()
	w.cur = append(w.cur, '$')
	w.cur = strconv.AppendInt(w.cur, int64(len(b)), 10)
	w.cur = append(w.cur, '\r', '\n')
	if err := w.flush(); err != nil {
		return err
	}
	for sent := 0; ; {
		n, done, err := f.Wait(sent)
		if err != nil {
			return err
		}
		if n > sent {
			rest := b[sent:n]
			if err := w.writeAll(func() (int64, error) {
				k, err := w.conn.Write(rest)
				rest = rest[k:]
				return int64(k), err
			}); err != nil {
				return err
			}
			sent = n
		}
		if done {
			if sent != len(b) {
				return errShortFill
			}
			break
		}
	}
	w.cur = append(w.cur, '\r', '\n')
	return nil
}

func (w *writer) newSeg() []byte {
	if n := len(w.spare); n > 0 {
		b := w.spare[n-1]
		w.spare = w.spare[:n-1]
		return b[:0]
	}
	return make([]byte, 0, 4096)
}

// null is the nil reply: "$-1" in RESP2, "_" in RESP3.
func (w *writer) null() {
	if w.proto == 3 {
		w.cur = append(w.cur, "_\r\n"...)
		return
	}
	w.cur = append(w.cur, "$-1\r\n"...)
}

func (w *writer) array(n int) { w.cur = redcon.AppendArray(w.cur, n) }

// mapHeader starts a map of n pairs: "%n" in RESP3, a flat array of 2n in RESP2.
func (w *writer) mapHeader(n int) {
	if w.proto == 3 {
		w.cur = append(w.cur, '%')
		w.cur = strconv.AppendInt(w.cur, int64(n), 10)
		w.cur = append(w.cur, '\r', '\n')
		return
	}
	w.array(2 * n)
}

// setHeader starts a set: "~n" in RESP3, an array in RESP2.
func (w *writer) setHeader(n int) {
	if w.proto == 3 {
		w.cur = append(w.cur, '~')
		w.cur = strconv.AppendInt(w.cur, int64(n), 10)
		w.cur = append(w.cur, '\r', '\n')
		return
	}
	w.array(n)
}

// verbatim writes text such as INFO's: "=" with a txt: prefix in RESP3, a
// bulk string in RESP2.
func (w *writer) verbatim(s string) {
	if w.proto == 3 {
		w.cur = append(w.cur, '=')
		w.cur = strconv.AppendInt(w.cur, int64(len(s)+4), 10)
		w.cur = append(w.cur, "\r\ntxt:"...)
		w.cur = append(w.cur, s...)
		w.cur = append(w.cur, '\r', '\n')
		return
	}
	w.bulkString(s)
}

// bulkStrings writes an array of bulk strings.
func (w *writer) bulkStrings(ss []string) {
	w.array(len(ss))
	for _, s := range ss {
		w.bulkString(s)
	}
}

var errWriteStalled = errors.New("resp: client stopped reading its replies")

// flush sends everything gathered. A client that does not read for the
// stall timeout is cut off, which frees what its replies pinned.
func (w *writer) flush() error {
	if len(w.cur) == 0 && len(w.segs) == 0 {
		return nil
	}
	var err error
	if len(w.segs) == 0 {
		rest := w.cur
		err = w.writeAll(func() (int64, error) {
			n, err := w.conn.Write(rest)
			rest = rest[n:]
			return int64(n), err
		})
		w.cur = w.cur[:0]
		if cap(w.cur) > 1<<20 {
			w.cur = make([]byte, 0, 4096)
		}
	} else {
		if len(w.cur) > 0 {
			w.segs = append(w.segs, w.cur)
		} else {
			w.spare = append(w.spare, w.cur)
		}
		keep := make([][]byte, 0, len(w.segs))
		for i, s := range w.segs {
			if i%2 == 0 || i == len(w.segs)-1 {
				keep = append(keep, s) // the small segments, to reuse
			}
		}
		bufs := w.segs
		err = w.writeAll(func() (int64, error) { return bufs.WriteTo(w.conn) })
		for _, s := range keep {
			if cap(s) <= 1<<20 && len(w.spare) < 8 {
				w.spare = append(w.spare, s[:0])
			}
		}
		w.segs = w.segs[:0]
		w.cur = w.newSeg()
	}
	for i, b := range w.pins {
		b.Release()
		w.pins[i] = nil
	}
	w.pins = w.pins[:0]
	w.pending = 0
	return err
}

// writeAll runs write until it reports everything written, renewing the
// write deadline while the client makes progress.
func (w *writer) writeAll(write func() (int64, error)) error {
	for {
		if w.stall > 0 {
			_ = w.conn.SetWriteDeadline(time.Now().Add(w.stall))
		}
		n, err := write()
		w.written.Add(n)
		if err == nil {
			return nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && n > 0 {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errWriteStalled
		}
		if err == io.ErrShortWrite && n > 0 {
			continue
		}
		return err
	}
}

// bufferBytes is the capacity of the writer's own reply buffers (not of the
// slab buffers it pins, which the arena counts already).
func (w *writer) bufferBytes() int {
	n := cap(w.cur)
	for _, b := range w.spare {
		n += cap(b)
	}
	for i := 0; i < len(w.segs); i += 2 {
		n += cap(w.segs[i]) // even segments are reply bytes, odd ones values
	}
	return n
}

// discard drops what is gathered without sending it (connection closing).
func (w *writer) discard() {
	for _, b := range w.pins {
		b.Release()
	}
	w.pins, w.segs, w.pending = w.pins[:0], w.segs[:0], 0
	w.cur = w.cur[:0]
}
