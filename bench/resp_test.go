package bench

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/redcon"
)

func readerConn(data []byte) *conn {
	return &conn{br: bufio.NewReaderSize(bytes.NewReader(data), readBufSize)}
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // describe() of the reply, or "" for a protocol error
		str  string
	}{
		{"+OK\r\n", `+"OK"`, "OK"},
		{"-ERR wrong\r\n", `-"ERR wrong"`, "ERR wrong"},
		{":0\r\n", ":0", ""},
		{":1\r\n", ":1", ""},
		{":-42\r\n", ":-42", ""},
		{"$3\r\nabc\r\n", "a bulk string of 3 bytes", "abc"},
		{"$0\r\n\r\n", "a bulk string of 0 bytes", ""},
		{"$-1\r\n", "$-1", ""},
		{"*-1\r\n", "*-1", ""},
		{"*2\r\n$1\r\na\r\n:5\r\n", "an array of 2", ""},
		{"*0\r\n", "an array of 0", ""},
		// Not what Redis writes: refused, so that a parse proves exact bytes.
		{":01\r\n", "", ""},
		{":+1\r\n", "", ""},
		{":-0\r\n", "", ""},
		{":\r\n", "", ""},
		{"$03\r\nabc\r\n", "", ""},
		{"$-2\r\n", "", ""},
		{"$3\r\nabcd\r\n", "", ""},
		{"$3\r\nab", "", ""},
		{"+OK\n", "", ""},
		{"\r\n", "", ""},
		{"_\r\n", "", ""},
		{"$536870913\r\n", "", ""},
		{"*1048577\r\n", "", ""},
		{"+" + strings.Repeat("x", readBufSize) + "\r\n", "", ""},
	} {
		r, err := readerConn([]byte(tc.in)).readReply(nil)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%.20q: parsed as %s, want an error", tc.in, r.describe())
			} else if !errors.Is(err, errProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%.20q: error %v is neither a protocol error nor a short read", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := r.describe(); got != tc.want {
			t.Errorf("%q: got %s, want %s", tc.in, got, tc.want)
		}
		if string(r.str) != tc.str {
			t.Errorf("%q: str %q, want %q", tc.in, r.str, tc.str)
		}
		if enc := appendReply(nil, r); string(enc) != tc.in {
			t.Errorf("%q: re-encoded as %q", tc.in, enc)
		}
	}
}

func TestTypedReads(t *testing.T) {
	c := readerConn([]byte("+OK\r\n-OOM no\r\n:1\r\n+OK\r\n$-1\r\n$2\r\nhi\r\n-ERR x\r\n:7\r\n"))
	if err := c.expectOK(); err != nil {
		t.Fatal(err)
	}
	var se serverError
	if err := c.expectOK(); !errors.As(err, &se) || string(se) != "OOM no" || isConnError(err) {
		t.Fatalf("error reply: got %v", err)
	}
	var ue *unexpectedReply
	if err := c.expectOK(); !errors.As(err, &ue) || isConnError(err) {
		t.Fatalf(":1 to a SET: got %v", err)
	}
	if _, err := c.readInt(); !errors.As(err, &ue) {
		t.Fatalf("+OK to EXISTS: got %v", err)
	}
	buf := make([]byte, 16)
	if b, ok, err := c.readBulk(buf); err != nil || ok || b != nil {
		t.Fatalf("nil bulk: %q %v %v", b, ok, err)
	}
	if b, ok, err := c.readBulk(buf); err != nil || !ok || string(b) != "hi" || &b[0] != &buf[0] {
		t.Fatalf("bulk: %q %v %v (must land in the caller's buffer)", b, ok, err)
	}
	if _, _, err := c.readBulk(buf); !errors.As(err, &se) {
		t.Fatalf("error reply to GET: got %v", err)
	}
	if n, err := c.readInt(); err != nil || n != 7 {
		t.Fatalf("int: %d %v", n, err)
	}
	if _, err := c.readReply(nil); !errors.Is(err, io.EOF) || !isConnError(err) {
		t.Fatalf("at the end: got %v, want EOF", err)
	}
}

// fakeServer is a tiny in-memory server on redcon: SET, GET, EXISTS, DEL,
// PING, AUTH. A GET of a key starting with "corrupt" returns its value with
// one byte changed; a SET of a key starting with "oom" is refused.
func fakeServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	data := map[string][]byte{}
	go redcon.Serve(ln, func(c redcon.Conn, cmd redcon.Command) {
		mu.Lock()
		defer mu.Unlock()
		switch strings.ToUpper(string(cmd.Args[0])) {
		case "PING":
			c.WriteString("PONG")
		case "AUTH":
			c.WriteString("OK")
		case "SET":
			if bytes.HasPrefix(cmd.Args[1], []byte("oom")) {
				c.WriteError("OOM command not allowed when used memory > 'maxmemory'.")
				return
			}
			data[string(cmd.Args[1])] = bytes.Clone(cmd.Args[2])
			c.WriteString("OK")
		case "GET":
			v, ok := data[string(cmd.Args[1])]
			if !ok {
				c.WriteNull()
				return
			}
			if bytes.HasPrefix(cmd.Args[1], []byte("corrupt")) {
				v = bytes.Clone(v)
				v[len(v)-1]++
			}
			c.WriteBulk(v)
		case "EXISTS", "DEL":
			_, ok := data[string(cmd.Args[1])]
			if ok && string(cmd.Args[0]) == "DEL" {
				delete(data, string(cmd.Args[1]))
			}
			if ok {
				c.WriteInt(1)
			} else {
				c.WriteInt(0)
			}
		default:
			c.WriteError("ERR unknown command '" + string(cmd.Args[0]) + "'")
		}
	}, nil, nil)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestConnAgainstFake sends pipelined commands, values written in place
// and checked on the way back.
func TestConnAgainstFake(t *testing.T) {
	c, err := dial(fakeServer(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	pat := newPattern(1 << 20)
	keys := []string{"a", "b", "c"}
	sizes := []int{1 << 20, 28, 200_001}
	for i, k := range keys {
		c.writeArrayHeader(3)
		c.writeBulkString("SET")
		c.writeBulkString(k)
		pat.writeValue(c, []byte(k), sizes[i])
	}
	c.writeCommand("EXISTS", "b")
	c.writeCommand("EXISTS", "zz")
	c.writeCommand("GET", "zz")
	c.writeCommand("NOPE")
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	for range keys {
		if err := c.expectOK(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.readInt(); n != 1 || err != nil {
		t.Fatalf("EXISTS b: %d %v", n, err)
	}
	if n, err := c.readInt(); n != 0 || err != nil {
		t.Fatalf("EXISTS zz: %d %v", n, err)
	}
	buf := make([]byte, 1<<20)
	if _, ok, err := c.readBulk(buf); ok || err != nil {
		t.Fatalf("GET zz: %v %v", ok, err)
	}
	if r, err := c.readReply(nil); err != nil || r.kind != '-' {
		t.Fatalf("NOPE: %s %v", r.describe(), err)
	}
	for i, k := range keys {
		c.writeCommand("GET", k)
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
		b, ok, err := c.readBulk(buf)
		if err != nil || !ok {
			t.Fatalf("GET %s: %v %v", k, ok, err)
		}
		if err := pat.verify([]byte(k), b, sizes[i], rand.New(rand.NewPCG(1, 2))); err != nil {
			t.Fatal(err)
		}
		// The value of another key, or of another size, is wrong.
		var ve *verifyError
		if err := pat.verify([]byte(k+"x"), b, sizes[i], rand.New(rand.NewPCG(1, 2))); !errors.As(err, &ve) {
			t.Fatalf("GET %s checked as %sx: %v", k, k, err)
		}
		if err := pat.verify([]byte(k), b, sizes[i]+1, rand.New(rand.NewPCG(1, 2))); !errors.As(err, &ve) {
			t.Fatalf("GET %s checked with another size: %v", k, err)
		}
	}
}

// FuzzReadReply: the parser never panics, and whatever it accepts is
// exactly the canonical encoding of what it returns.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$-1\r\n", "$3\r\nabc\r\n",
		"*2\r\n$1\r\na\r\n*-1\r\n", "*1\r\n*1\r\n:0\r\n", "$5\r\nab"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rest := data
		for len(rest) > 0 {
			c := readerConn(rest)
			r, err := c.readReply(make([]byte, 0, 8))
			if err != nil {
				if !errors.Is(err, errProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			enc := appendReply(nil, r)
			if !bytes.HasPrefix(rest, enc) {
				t.Fatalf("accepted %q as %q", rest, enc)
			}
			rest = rest[len(enc):]
		}
	})
}
