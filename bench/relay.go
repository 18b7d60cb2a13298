package bench

import (
	"io"
	"net"
	"sync"
)

// relay forwards bytes between each client and the upstream and does nothing
// else: no parsing, no storing, no checksum. It is the floor any cut-through
// proxy stands on, which `bench upstream` measures beside kvresp's cold
// reads: with copy, each byte is read into a buffer and written out again
// (two copies more than a direct GET, as kvresp makes); with splice, the
// kernel moves the pages between the sockets (Go's TCPConn.ReadFrom) and no
// byte crosses into user space.
type relay struct {
	ln     net.Listener
	up     string
	splice bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startRelay(upstream string, splice bool) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, up: upstream, splice: splice}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", r.up)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		r.conns = append(r.conns, c, u)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(u, c)
		go r.pipe(c, u)
	}
}

// pipe copies src to dst until either ends, then closes both.
func (r *relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	if r.splice {
		_, _ = io.Copy(dst, src)
	} else {
		// The wrappers hide ReadFrom and WriteTo, which would splice.
		_, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 256<<10))
	}
	dst.Close()
	src.Close()
}

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
