package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/redcon"

	"kvresp/slab"
)

func newTestArena(t testing.TB, limit int64) *slab.Arena {
	t.Helper()
	a, err := slab.New(slab.Options{Limit: limit, ValueOffset: slab.DefaultValueOffset})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Check(); err != nil {
			t.Errorf("arena check: %v", err)
		}
		_ = a.Close()
	})
	return a
}

var authed = limits{maxBulk: DefaultProtoMaxBulkLen, maxQuery: DefaultQueryBufferLimit, bigBulk: DefaultBigBulk, authed: true}

// readAll parses every request in in, returning the arguments of each, or
// the first error.
func readAll(t testing.TB, a *slab.Arena, in string, lim limits) ([][]string, error) {
	var total atomic.Int64
	r := newReader(strings.NewReader(in), a, &total)
	defer r.req.release()
	var out [][]string
	for {
		req, err := r.next(lim)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if req == nil {
			continue
		}
		for _, b := range req.bufs {
			// A value read into its own buffer sits where replies copy fast (slab.AllocValue).
			if b != nil && b.Len() > 16<<10 && int(slab.Addr(b.Bytes())%4096) != a.ValueOffset() {
				return out, fmt.Errorf("a %d-byte bulk read at page offset %d, want %d", b.Len(), slab.Addr(b.Bytes())%4096, a.ValueOffset())
			}
		}
		var args []string
		for _, a := range req.args {
			args = append(args, string(a))
		}
		out = append(out, args)
	}
}

func TestReaderRequests(t *testing.T) {
	a := newTestArena(t, 64<<20)
	big := strings.Repeat("v", DefaultBigBulk+5)
	tests := []struct {
		name, in string
		want     [][]string
	}{
		{"multibulk", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [][]string{{"GET", "k"}}},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", [][]string{{"PING"}, {"ECHO", ""}}},
		{"inline", "set a \"b c\"\r\nget 'x y'\n", [][]string{{"set", "a", "b c"}, {"get", "x y"}}},
		{"inline escapes", "echo \"\\x41\\n\"\r\n", [][]string{{"echo", "A\n"}}},
		{"empty inline and negative count are skipped", "\r\n*-10\r\n*0\r\nPING\r\n", [][]string{{"PING"}}},
		{"big bulk goes to slab", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + fmt.Sprint(len(big)) + "\r\n" + big + "\r\n", [][]string{{"SET", "k", big}}},
		{"binary", "*2\r\n$4\r\nECHO\r\n$4\r\n\x00\r\n\xff\r\n", [][]string{{"ECHO", "\x00\r\n\xff"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, a, tc.in, authed)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReaderProtocolErrors follows Redis's own protocol tests
// (tests/unit/protocol.tcl).
func TestReaderProtocolErrors(t *testing.T) {
	a := newTestArena(t, 64<<20)
	unauth := authed
	unauth.authed = false
	tests := []struct {
		name, in string
		lim      limits
		want     string
	}{
		{"huge multibulk count", "*3000000000\r\n", authed, "invalid multibulk length"},
		{"bad multibulk count", "*20k\r\n", authed, "invalid multibulk length"},
		{"huge bulk", "*1\r\n$2000000000\r\n", authed, "invalid bulk length"},
		{"bulk over proto-max-bulk-len", "*1\r\n$600000000\r\n", authed, "invalid bulk length"},
		{"negative bulk", "*1\r\n$-1\r\n", authed, "invalid bulk length"},
		{"not a bulk", "*1\r\nfoo\r\n", authed, "expected '$', got 'f'"},
		{"unbalanced double quotes", "set \"\"\"test-key\"\"\" test-value\r\n", authed, "unbalanced quotes in request"},
		{"unbalanced single quote", "set 'a b\r\n", authed, "unbalanced quotes in request"},
		{"too big inline", strings.Repeat("a", maxInlineLen+10), authed, "too big inline request"},
		{"too big count line", "*" + strings.Repeat("1", maxCountLineLen+10) + "\r\n", authed, "too big mbulk count string"},
		{"bulk without CRLF", "*1\r\n$3\r\nabcde", authed, "invalid bulk format"},
		{"unauthenticated many args", "*11\r\n", unauth, "unauthenticated multibulk length"},
		{"unauthenticated big bulk", "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$100000000\r\n", unauth, "unauthenticated bulk length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, a, tc.in, tc.lim)
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Msg != tc.want {
				t.Fatalf("got %v, want protocol error %q", err, tc.want)
			}
		})
	}
}

func TestReaderQueryLimit(t *testing.T) {
	a := newTestArena(t, 64<<20)
	lim := authed
	lim.maxQuery = 1 << 20
	in := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + fmt.Sprint(2<<20) + "\r\n"
	if _, err := readAll(t, a, in, lim); !errors.Is(err, errQueryLimit) {
		t.Fatalf("got %v, want the query buffer limit", err)
	}
}

// A bulk larger than the arena can ever hold is consumed and reported on the
// request, so the command gets an error and the next command is parsed.
func TestReaderBulkLargerThanMemory(t *testing.T) {
	a := newTestArena(t, 1<<20)
	big := strings.Repeat("x", 2<<20)
	in := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + fmt.Sprint(len(big)) + "\r\n" + big + "\r\n*1\r\n$4\r\nPING\r\n"
	var total atomic.Int64
	r := newReader(strings.NewReader(in), a, &total)
	defer r.req.release()
	req, err := r.next(authed)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(req.allocErr, slab.ErrTooLarge) {
		t.Fatalf("allocErr = %v, want ErrTooLarge", req.allocErr)
	}
	req, err = r.next(authed)
	if err != nil || len(req.args) != 1 || string(req.args[0]) != "PING" {
		t.Fatalf("next request = %v, %v; want PING", req, err)
	}
	if total.Load() != int64(len(in)) {
		t.Fatalf("counted %d bytes read, want %d", total.Load(), len(in))
	}
}

// FuzzReader feeds arbitrary bytes to the request reader: it must never
// panic, never return a request with arguments that are not what was framed,
// and leave every slab buffer released.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "PING\r\n", "*-10\r\n", "*3000000000\r\n",
		"*1\r\n$2000000000\r\n", "*1\r\nfoo\r\n", "set \"\"\"a\"\"\" b\r\n", "\x00*\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20\r\n01234567890123456789\r\n",
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, auth bool) {
		a, err := slab.New(slab.Options{Limit: 8 << 20, ValueOffset: slab.DefaultValueOffset})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		lim := limits{maxBulk: 1 << 20, maxQuery: 4 << 20, bigBulk: 16, authed: auth}
		var total atomic.Int64
		r := newReader(bytes.NewReader(in), a, &total)
		for i := 0; i < 1000; i++ {
			req, err := r.next(lim)
			if err != nil {
				break
			}
			if req != nil && len(req.args) == 0 {
				t.Fatal("request with no arguments")
			}
		}
		r.req.release()
		if st := a.Stats(); st.InUse != 0 {
			t.Fatalf("%d bytes of slab buffers still in use", st.InUse)
		}
		if err := a.Check(); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkReaderSet32MiB measures parsing a 32 MiB SET with kvresp's reader
// (one copy, socket to slab buffer) beside redcon's (which gathers the whole
// command in its buffer, then copies it into Command.Raw and Args), which is
// why kvresp reads requests itself and keeps redcon for reply encoding.
func BenchmarkReaderSet32MiB(b *testing.B) {
	val := bytes.Repeat([]byte("v"), 32<<20)
	var msg []byte
	msg = append(msg, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$"...)
	msg = append(msg, fmt.Sprint(len(val))...)
	msg = append(msg, "\r\n"...)
	msg = append(msg, val...)
	msg = append(msg, "\r\n"...)
	b.Run("kvresp", func(b *testing.B) {
		a := newTestArena(b, 256<<20)
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		var total atomic.Int64
		for i := 0; i < b.N; i++ {
			r := newReader(bytes.NewReader(msg), a, &total)
			req, err := r.next(authed)
			if err != nil || len(req.args[2]) != len(val) {
				b.Fatal(err)
			}
			r.req.release()
		}
	})
	b.Run("redcon", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r := redcon.NewReader(bytes.NewReader(msg))
			cmd, err := r.ReadCommand()
			if err != nil || len(cmd.Args[2]) != len(val) {
				b.Fatal(err)
			}
		}
	})
}
